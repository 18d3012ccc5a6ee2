// A NodeAgent runtime that backs each pod of a StatefulSet with a real Kafka
// node in KRaft combined mode (broker and controller in one process), wrapped
// by the in-pod pilot (`sts-pilot pilot --app kafka -- java … kafka.Kafka`),
// as a container runtime would run it:
//
// - node.id = the pod's position in `names`: its ordinal for one StatefulSet
//   (the kafka hook's convention with node-id-offset 0); for several, list each
//   StatefulSet's pods in ordinal order and give each StatefulSet the offset of
//   its first pod (kafka-a-0, kafka-a-1, kafka-b-0, kafka-b-1: kafka-b's offset
//   is 2); a static voter set of all pods (controller.quorum.voters), or of the
//   first `controllers` pods, the others brokers only;
// - the log dir is keyed by the pod's name, so it survives the pod's
//   re-creation like a PersistentVolumeClaim; it is formatted once, by the
//   pilot's --pre-start (as an init step of the pod would);
// - env POD_NAME / POD_NAMESPACE / POD_UID / POD_REVISION from the pod; the
//   pilot writes Pilot status with the ADMIN kubeconfig of the test cluster;
// - readiness = the pilot's /readyz (broker registered and unfenced);
// - every process under `setpriv --pdeathsig KILL`, so nothing outlives the test.

import type { V1Pod } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PodRuntime } from '../cluster/node-agent.ts';
import { podPilotReady, startPodPilot, stopPodPilot, terminatePilots } from '../cluster/pilot-processes.ts';
import { freePortBlock } from '../es/pod-runtime.ts';
import type { Cluster } from '../integration/harness.ts';
import type { PilotProcess } from '../pilot/harness.ts';
import { javaCommand, type KafkaDist, type KraftNode, LOG4J2, writeKraftProperties } from './kafka-dist.ts';

export interface KafkaPodRuntimeOptions {
  c: Cluster;
  dist: KafkaDist;
  /** Kept by the caller (removed by it). */
  workDir: string;
  /** Pod names; node.id is the position here (one StatefulSet: ordinal order; several: one after the other). */
  names: string[];
  heap?: string;
  /** How many pods, from ordinal 0, are combined broker+controller voters; the rest are brokers only. Default: all. */
  controllers?: number;
  /** Broker settings added to every node's server.properties. */
  settings?: Record<string, string | number>;
  log?: (line: string) => void;
}

interface PodNode {
  name: string;
  id: number;
  brokerPort: number;
  controllerPort: number;
  dir: string;
  pilot: PilotProcess | undefined;
  /** The uid of the pod `pilot` was started for. */
  podUid: string | undefined;
  starts: number;
}

/** A KRaft cluster id: 16 random bytes, URL-safe base64 without padding. */
const newClusterId = (): string => randomBytes(16).toString('base64url');

export class KafkaPodRuntime implements PodRuntime {
  readonly nodes = new Map<string, PodNode>();
  readonly pilots: { pod: string; pilot: PilotProcess }[] = [];
  readonly clusterId = newClusterId();
  private readonly o: KafkaPodRuntimeOptions;

  private constructor(o: KafkaPodRuntimeOptions, base: number) {
    this.o = o;
    o.names.forEach((name, i) =>
      this.nodes.set(name, { name, id: i, brokerPort: base + i, controllerPort: base + 100 + i, dir: path.join(o.workDir, name), pilot: undefined, podUid: undefined, starts: 0 }),
    );
    fs.writeFileSync(path.join(o.workDir, 'log4j2.properties'), LOG4J2);
  }

  static async create(o: KafkaPodRuntimeOptions): Promise<KafkaPodRuntime> {
    return new KafkaPodRuntime(o, await freePortBlock(o.names.length));
  }

  /** host:port of every broker listener: the bootstrap list. */
  bootstrap(): string {
    return [...this.nodes.values()].map((n) => `127.0.0.1:${n.brokerPort}`).join(',');
  }

  node(name: string): PodNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no Kafka node for pod ${name}`);
    return n;
  }

  private configure(n: PodNode): string {
    const controllers = this.o.controllers ?? this.nodes.size;
    const kraft = (x: PodNode): KraftNode => ({ id: x.id, brokerPort: x.brokerPort, controllerPort: x.controllerPort, dataDir: path.join(x.dir, 'data'), voter: x.id < controllers });
    const file = path.join(n.dir, 'server.properties');
    writeKraftProperties(file, kraft(n), [...this.nodes.values()].map(kraft), this.o.settings);
    return file;
  }

  async start(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const n = this.node(name);
    if (n.pilot && !n.pilot.exit) {
      // The node agent starts a pod again when the first start timed out (the pilot slow to serve /healthz on a
      // loaded machine): the same pod waits for the pilot it already has; another pod may not run beside it.
      if (n.podUid === pod.metadata?.uid) return n.pilot.waitForServer();
      throw new Error(`${name}: a pilot still runs (pid ${n.pilot.pid})`);
    }
    const props = this.configure(n);
    const { dist } = this.o;
    const log4j = path.join(this.o.workDir, 'log4j2.properties');
    // Format once; a formatted dir is kept (it is the pod's volume).
    const format = javaCommand(dist, 'kafka.tools.StorageTool', ['format', '--ignore-formatted', '-t', this.clusterId, '-c', props], { heap: '128m', log4j });
    const broker = javaCommand(dist, 'kafka.Kafka', [props], { heap: this.o.heap ?? '256m', log4j });
    n.starts++;
    this.o.log?.(`${name}: starting Kafka node ${n.id} (start #${n.starts}) on ${n.brokerPort} under the pilot`);
    const pilot = await startPodPilot({
      c: this.o.c,
      pod,
      command: ['setpriv', '--pdeathsig', 'KILL', '--', ...broker],
      env: { KAFKA_HEAP_OPTS: '', KAFKA_OPTS: '', JAVA_TOOL_OPTIONS: '', _JAVA_OPTIONS: '' },
      app: 'kafka',
      appUrl: `kafka://127.0.0.1:${n.brokerPort}`,
      flags: ['--app-data-dir', path.join(n.dir, 'data'), '--pre-start', format.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')],
    });
    n.pilot = pilot;
    n.podUid = pod.metadata?.uid;
    this.pilots.push({ pod: name, pilot });
    await pilot.waitForServer();
  }

  async stop(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    await stopPodPilot(name, this.node(name).pilot, this.o.log);
  }

  async ready(pod: V1Pod): Promise<boolean> {
    return podPilotReady(this.node(pod.metadata?.name ?? '').pilot);
  }

  async stopAll(): Promise<void> {
    await terminatePilots([...this.nodes.values()].map((n) => n.pilot));
  }

  tail(name: string, lines = 30): string {
    return this.nodes.get(name)?.pilot?.tail(lines) ?? '';
  }
}
