import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import { z } from 'zod';
import { type ApplicationStatus, ClusterHealth } from '../pilot/schema.ts';
import { jsonGetter, settler } from './json-get.ts';
import type { ApplicationProbe } from './types.ts';

export interface ElasticsearchProbeOptions {
  /** Base URL of the local node, e.g. http://127.0.0.1:9200; user:password@ in it becomes basic auth. */
  url: string;
  /** Per request; the five requests of one probe run in parallel. */
  timeoutMs?: number;
  /** PEM bundle to trust for an https URL (the cluster's own CA). */
  caFile?: string;
  /** For tests: undici's MockAgent, or a pool of one's own. */
  dispatcher?: Dispatcher;
}

// Only what we read of each answer; both Elasticsearch and OpenSearch send more.
const Root = z.object({
  cluster_uuid: z.string().optional(),
  version: z.object({ number: z.string(), distribution: z.string().optional() }).optional(),
});
const NodesInfo = z.object({
  cluster_name: z.string().optional(),
  nodes: z.record(
    z.string(),
    z.object({ name: z.string(), version: z.string().optional(), roles: z.array(z.string()).optional(), build_flavor: z.string().optional() }),
  ),
});
const Health = z.object({ status: ClusterHealth, cluster_name: z.string().optional() });
// The node's own copies, from its local copy of the cluster state (no request to the master, no stats).
const LocalRouting = z.object({
  routing_nodes: z.object({ nodes: z.record(z.string(), z.array(z.object({ state: z.string() }))) }).optional(),
});
// Documents in the copies on this node, counted by this node alone.
const LocalDocs = z.object({ nodes: z.record(z.string(), z.object({ indices: z.object({ docs: z.object({ count: z.number().int().min(0) }) }) })) });
const StateMeta = z.object({ metadata: z.object({ cluster_uuid: z.string(), cluster_uuid_committed: z.boolean().optional() }) });

/** The cluster UUID a node reports before it has joined a cluster. */
const UNKNOWN_UUID = '_na_';

/**
 * Shard copies on one node by state, from its entry in routing_nodes: a copy
 * relocating away is RELOCATING there, one relocating here is INITIALIZING.
 */
export function localShards(copies: readonly { state: string }[]): { started: number; relocating: number; initializing: number } {
  const out = { started: 0, relocating: 0, initializing: 0 };
  for (const c of copies) {
    if (c.state === 'STARTED') out.started++;
    else if (c.state === 'RELOCATING') out.relocating++;
    else if (c.state === 'INITIALIZING') out.initializing++;
  }
  return out;
}

/**
 * Reads the local Elasticsearch or OpenSearch node: who it is (GET /,
 * /_nodes/_local), whether it has joined a cluster (cluster UUID), the
 * cluster's health (/_cluster/health, from the elected master), and the shard
 * copies it holds (its entry of the routing nodes in its local cluster state)
 * with their documents (its own node stats). `_cat/shards`, which this used
 * to call, makes every node compute stats for every index, every 10 s per pod:
 * on a large cluster that is the heaviest thing the pilots did. Each answer is
 * validated; one that fails leaves its fields unknown and says so in `error`.
 * GET / is optional: the Elasticsearch integ-test build has no such route, so
 * the UUID then comes from the node's local cluster state.
 */
export function elasticsearchProbe(o: ElasticsearchProbeOptions): ApplicationProbe {
  const base = new URL(o.url);
  const headers: Record<string, string> = {};
  if (base.username || base.password) {
    const user = decodeURIComponent(base.username);
    const pass = decodeURIComponent(base.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const root = base.toString().replace(/\/+$/, '');
  const timeoutMs = o.timeoutMs ?? 5000;
  const dispatcher = o.dispatcher ?? (o.caFile ? new Agent({ connect: { ca: readFileSync(o.caFile, 'utf8') } }) : undefined);

  const get = jsonGetter({ root, timeoutMs, headers, maxBytes: 32 << 20, ...(dispatcher ? { dispatcher } : {}) });

  return {
    name: 'elasticsearch',
    async probe(signal) {
      const errors: string[] = [];
      const settle = settler(errors, signal);
      const [rootInfo, nodes, health] = await Promise.all([
        // GET / failing is expected on some builds; it is only a shortcut, so its error is not reported.
        get('/', Root, signal).catch((err: unknown) => {
          if (signal.aborted) throw err;
          return undefined;
        }),
        settle(get('/_nodes/_local?filter_path=cluster_name,nodes.*.name,nodes.*.version,nodes.*.roles,nodes.*.build_flavor', NodesInfo, signal)),
        settle(get('/_cluster/health', Health, signal)),
      ]);
      const status: ApplicationStatus = { probe: 'elasticsearch' };
      const entries = Object.entries(nodes?.nodes ?? {});
      const local = entries.length === 1 ? entries[0] : undefined;
      if (nodes && !local) errors.push(`GET /_nodes/_local listed ${entries.length} nodes, not 1`);

      let uuid = rootInfo?.cluster_uuid;
      const id = local?.[0];
      const needMeta = local && (uuid === undefined || uuid === UNKNOWN_UUID);
      const [meta, routing, docs] = await Promise.all([
        needMeta
          ? // No index filter here: with one, Elasticsearch 8 answers cluster_uuid_committed false (it builds a fresh metadata).
            settle(get('/_cluster/state/metadata?local=true&filter_path=metadata.cluster_uuid,metadata.cluster_uuid_committed', StateMeta, signal))
          : Promise.resolve(undefined),
        id ? settle(get(`/_cluster/state/routing_nodes?local=true&filter_path=routing_nodes.nodes.${encodeURIComponent(id)}.state`, LocalRouting, signal)) : Promise.resolve(undefined),
        id ? settle(get('/_nodes/_local/stats/indices/docs?filter_path=nodes.*.indices.docs.count', LocalDocs, signal)) : Promise.resolve(undefined),
      ]);
      if (needMeta) uuid = meta && meta.metadata.cluster_uuid_committed !== false ? meta.metadata.cluster_uuid : undefined;

      if (local) {
        const [id, node] = local;
        status.nodeId = id;
        status.nodeName = node.name;
        const version = rootInfo?.version?.number ?? node.version;
        if (version) status.version = version;
        const distribution = rootInfo?.version ? (rootInfo.version.distribution ?? 'elasticsearch') : node.build_flavor ? 'elasticsearch' : undefined;
        if (distribution) status.distribution = distribution;
        if (node.roles) status.roles = [...node.roles].sort();
        if (uuid && uuid !== UNKNOWN_UUID) status.clusterUUID = uuid;
        // A node with no copies has no entry (filter_path then drops routing_nodes altogether).
        if (routing) status.shards = localShards(routing.routing_nodes?.nodes[id] ?? []);
        const d = docs ? Object.values(docs.nodes)[0] : undefined;
        if (d) status.documents = d.indices.docs.count;
      }
      const clusterName = nodes?.cluster_name ?? health?.cluster_name;
      if (clusterName) status.clusterName = clusterName;
      if (health) status.health = health.status;
      if (errors.length > 0) status.error = errors.join('; ').slice(0, 4000);
      return status;
    },
  };
}
