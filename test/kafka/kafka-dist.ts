// Kafka for the tests: jars from Maven Central through fetch-kafka.sh (cached
// outside the clone), and how to run a broker or a tool from them.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JarDist, jarDist } from '../tools/jar-dist.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export type KafkaDist = JarDist;

/** Runs fetch-kafka.sh (downloads on a cache miss); fails with the script's own words. */
export const kafkaDist = jarDist(path.join(here, 'fetch-kafka.sh'));

/** `java … -cp <libs>/* <main> <args>`: a Kafka process as bin/kafka-run-class.sh would start it. */
export function javaCommand(d: KafkaDist, main: string, args: string[], o: { heap?: string; log4j?: string } = {}): string[] {
  const heap = o.heap ?? '256m';
  return [
    path.join(d.javaHome, 'bin', 'java'),
    `-Xms${heap}`,
    `-Xmx${heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    ...(o.log4j ? [`-Dlog4j2.configurationFile=${o.log4j}`] : []),
    '-cp',
    `${d.libs}/*`,
    main,
    ...args,
  ];
}

/** A log4j2 configuration: INFO to stdout, the noisy loggers at WARN. */
export const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server
logger.server.level = INFO
logger.raft.name = org.apache.kafka.raft
logger.raft.level = INFO
`;

/** One node of a KRaft cluster on loopback: its id, ports and log dir. */
export interface KraftNode {
  id: number;
  brokerPort: number;
  controllerPort: number;
  dataDir: string;
  /** A combined broker+controller voter; else a broker only. */
  voter: boolean;
}

/**
 * Writes `file`, the server.properties of `n` in a cluster of `nodes` (a static
 * voter set: controller.quorum.voters), with `settings` added: how the tests'
 * pods and the bench's nodes are configured.
 */
export function writeKraftProperties(file: string, n: KraftNode, nodes: readonly KraftNode[], settings: Record<string, string | number> = {}): void {
  const voters = nodes.filter((x) => x.voter).map((x) => `${x.id}@127.0.0.1:${x.controllerPort}`).join(',');
  const props: Record<string, string | number> = {
    'process.roles': n.voter ? 'broker,controller' : 'broker',
    'node.id': n.id,
    'controller.quorum.voters': voters,
    listeners: n.voter ? `PLAINTEXT://127.0.0.1:${n.brokerPort},CONTROLLER://127.0.0.1:${n.controllerPort}` : `PLAINTEXT://127.0.0.1:${n.brokerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${n.brokerPort}`,
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': n.dataDir,
    'offsets.topic.replication.factor': 3,
    'transaction.state.log.replication.factor': 3,
    'transaction.state.log.min.isr': 2,
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': 'false',
    ...settings,
  };
  fs.mkdirSync(n.dataDir, { recursive: true });
  fs.writeFileSync(file, Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
}
