import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError } from '../errors.ts';
import { type BrokerAddress, openKafkaAdmin, RESOURCE_BROKER, RESOURCE_TOPIC } from '../kafka/admin.ts';
import type { ApplicationStatus, KafkaStatus } from '../pilot/schema.ts';
import { settler } from './json-get.ts';
import type { ApplicationProbe } from './types.ts';

export interface KafkaProbeOptions {
  /** The local broker's listener, e.g. 127.0.0.1:9092. */
  broker: BrokerAddress;
  /** A log dir of the node (its meta.properties names node.id and cluster.id): a node cannot be asked who it is. */
  logDir?: string;
  timeoutMs?: number;
}

/** node.id and cluster.id from a KRaft meta.properties (Java properties, key=value lines). */
export function parseMetaProperties(text: string): { nodeId?: number; clusterId?: string } {
  const out: { nodeId?: number; clusterId?: string } = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([a-z.]+)\s*[=:]\s*(\S*)\s*$/.exec(line);
    if (!m) continue;
    if (m[1] === 'node.id' && /^[0-9]{1,9}$/.test(m[2] as string)) out.nodeId = Number(m[2]);
    if (m[1] === 'cluster.id' && m[2]) out.clusterId = m[2];
  }
  return out;
}

/**
 * Reads the local Kafka node: who it is (meta.properties), its roles
 * (DescribeConfigs process.roles), whether it is registered and unfenced
 * (DescribeCluster), the active controller (DescribeQuorum), and the
 * partitions it hosts with their ISR against min.insync.replicas (Metadata,
 * DescribeConfigs). Unknown fields are left out and `error` says why.
 */
export function kafkaProbe(o: KafkaProbeOptions): ApplicationProbe {
  const timeoutMs = o.timeoutMs ?? 5000;
  return {
    name: 'kafka',
    async probe(signal) {
      const status: ApplicationStatus = { probe: 'kafka' };
      const errors: string[] = [];
      let meta: { nodeId?: number; clusterId?: string } = {};
      if (o.logDir) {
        try {
          meta = parseMetaProperties(await readFile(path.join(o.logDir, 'meta.properties'), 'utf8'));
          if (meta.nodeId === undefined) errors.push(`${o.logDir}/meta.properties has no node.id`);
        } catch (err) {
          errors.push(`cannot read ${o.logDir}/meta.properties: ${describeError(err, 200)}`);
        }
      } else {
        errors.push('no log dir given: node id unknown');
      }
      if (meta.nodeId !== undefined) status.nodeId = String(meta.nodeId);
      let admin;
      try {
        admin = await openKafkaAdmin({ bootstrap: [o.broker], timeoutMs, signal, clientId: 'sts-pilot-probe' });
      } catch (err) {
        if (signal.aborted) throw err;
        errors.push(describeError(err, 300));
      }
      if (admin) {
        try {
          const id = meta.nodeId;
          const settle = settler(errors, signal);
          const [cluster, quorum, metadata, roles] = await Promise.all([
            settle(admin.cluster()),
            settle(admin.quorum()),
            settle(admin.metadata()),
            id === undefined ? undefined : settle(admin.configs([{ type: RESOURCE_BROKER, name: String(id), keys: ['process.roles'] }])),
          ]);
          const clusterId = cluster?.clusterId ?? meta.clusterId;
          if (clusterId) status.clusterUUID = clusterId;
          const r = roles?.results[0]?.configs.find((c) => c.name === 'process.roles')?.value;
          if (r) status.roles = r.split(',').map((x) => x.trim()).filter(Boolean).sort();
          if (id !== undefined) {
            const k: KafkaStatus = { brokerId: id };
            const leader = quorum?.topics[0]?.partitions[0]?.leaderId;
            if (leader !== undefined) k.activeController = leader;
            if (cluster) {
              const b = cluster.brokers.find((x) => x.brokerId === id);
              k.registered = !!b;
              k.fenced = b?.isFenced ?? false;
            }
            if (metadata) {
              const mine = metadata.topics.flatMap((t) => t.partitions.filter((p) => p.replicaNodes.includes(id)).map((p) => ({ topic: t.name ?? '', p })));
              const topics = [...new Set(mine.map((m) => m.topic))];
              const cfg = topics.length > 0 ? await settle(admin.configs(topics.map((name) => ({ type: RESOURCE_TOPIC, name, keys: ['min.insync.replicas'] })))) : { results: [] };
              k.partitions = mine.length;
              k.leaders = mine.filter((m) => m.p.leaderId === id).length;
              k.underReplicated = mine.filter((m) => m.p.isrNodes.length < m.p.replicaNodes.length).length;
              if (cfg) {
                const minIsr = new Map(cfg.results.map((res) => [res.resourceName, Number(res.configs.find((c) => c.name === 'min.insync.replicas')?.value ?? 1)]));
                k.underMinIsr = mine.filter((m) => m.p.isrNodes.length < (minIsr.get(m.topic) ?? 1)).length;
              }
            }
            status.kafka = k;
          }
        } finally {
          await admin.close();
        }
      }
      if (errors.length > 0) status.error = errors.join('; ').slice(0, 4000);
      return status;
    },
  };
}
