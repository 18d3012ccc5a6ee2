import { z } from 'zod';
import { HookNotReady } from '../../lib/hook.ts';
import {
  AllocationAnswer,
  CoordinationAnswer,
  DiskDefaultsAnswer,
  HealthAnswer,
  IndexHealthAnswer,
  NodeCopiesAnswer,
  NodesInfoAnswer,
  ReplicasAnswer,
  SettingsAnswer,
  ShutdownAnswer,
  StateAnswer,
} from './answers.ts';
import type { EsClient } from './client.ts';
import { inFlight, resolveStrategy } from './decide.ts';
import type { Strategy, StrategyOption } from './options.ts';
import { EXCLUDE_NAME, effectiveLayer, parseNames } from './settings.ts';
import { type ClusterView, clusterView } from './view.ts';

export interface ReadPlan {
  markerKey: string;
  /** The node name of `next`, when a node is about to go: its copies are read. */
  next?: string;
  strategy: StrategyOption;
  timeoutSeconds: number;
}

// Without the shutdown module `/_nodes/shutdown` is the nodes info of a node
// named "shutdown": an object of nodes, not the shutdown API's array.
const ShutdownOrNodesInfo = z.union([ShutdownAnswer.extend({ nodes: ShutdownAnswer.shape.nodes.unwrap() }), z.looseObject({ nodes: z.record(z.string(), z.unknown()) })]);

/**
 * Reads what a decision needs, afresh, and little else: who the members are and
 * what they run, health, settings, the voting configuration, and — only when a
 * node is about to go — that node's shard copies (not every copy of the
 * cluster), the unassigned ones, and what the strategy needs besides. Reads go
 * to the elected master (cluster-level APIs), so whichever node the URL
 * reaches, they agree; a master timeout below our own makes a cluster without
 * a master say so, instead of leaving us to time out.
 */
export async function readCluster(es: EsClient, o: ReadPlan): Promise<{ view: ClusterView; strategy: Strategy }> {
  // Nodes info first: whether this is OpenSearch (which wants cluster_manager_timeout from 2.0 on; 3.0 refuses master_timeout).
  const info = await es.get('/_nodes/_all/_none?filter_path=nodes.*.name,nodes.*.version,nodes.*.roles,nodes.*.build_flavor', NodesInfoAnswer, 8 << 20);
  const infos = Object.values(info.nodes);
  const opensearch = infos.length > 0 && infos.every((n) => n.build_flavor === undefined);
  const major = Math.min(...infos.map((n) => Number(/^(\d+)/.exec(n.version)?.[1] ?? 0)));
  const secs = Math.max(1, Math.floor(o.timeoutSeconds / 2));
  const mt = `${opensearch && major >= 2 ? 'cluster_manager_timeout' : 'master_timeout'}=${secs}s`;
  const wantShutdowns = !opensearch && (o.strategy === 'auto' || o.strategy === 'shutdown');

  const [health, settings, state, coordination, shutdowns] = await Promise.all([
    es.get(`/_cluster/health?${mt}`, HealthAnswer),
    es.get(`/_cluster/settings?flat_settings=true&${mt}`, SettingsAnswer),
    es.get(`/_cluster/state/nodes,master_node?${mt}&filter_path=cluster_uuid,master_node,nodes.*.name,nodes.*.version`, StateAnswer, 8 << 20),
    // The index filter keeps the master from serializing every index's metadata just to drop it.
    es.get(
      `/_cluster/state/metadata/sts-pilot-no-index?ignore_unavailable=true&allow_no_indices=true&${mt}&filter_path=metadata.cluster_coordination.last_committed_config,metadata.cluster_coordination.voting_config_exclusions`,
      CoordinationAnswer,
    ),
    // No master timeout here: without the module this path is the nodes info, which refuses the parameter.
    wantShutdowns ? es.get('/_nodes/shutdown', ShutdownOrNodesInfo, 8 << 20) : Promise.resolve(undefined),
  ]);
  const shutdownAnswer = shutdowns === undefined ? undefined : Array.isArray(shutdowns.nodes) ? ShutdownAnswer.parse(shutdowns) : null;

  // A first view, without copies, decides which strategy runs and so what else to read.
  const base = { health, settings, state, nodesInfo: info, coordination, ...(shutdownAnswer !== undefined ? { shutdowns: shutdownAnswer } : {}) };
  const first = clusterView(base, o.markerKey, false);
  if (!first.ok) throw new HookNotReady(`Elasticsearch at ${es.url}: ${first.error}`);
  const strategy = resolveStrategy(o.strategy, first.view);

  let copies: NodeCopiesAnswer | undefined;
  let replicas: Record<string, number> | undefined;
  let allocation: AllocationAnswer | undefined;
  let diskDefaults: DiskDefaultsAnswer | undefined;
  const nextId = o.next ? first.view.nodes.find((n) => n.name === o.next)?.id : undefined;
  if (o.next) {
    // next's copies, and those of nodes on their way out (another StatefulSet's step, a shutdown
    // record, a removal): a copy there counts for nothing when next goes too.
    const going = inFlight(first.view, o.next).map((f) => first.view.nodes.find((n) => n.name === f.name)?.id);
    const ids = [nextId, ...going].filter((id): id is string => id !== undefined);
    const paths = ids.map((id) => `routing_nodes.nodes.${id}`);
    const filter = [...paths.flatMap((p) => ['state', 'index', 'shard', 'primary'].map((f) => `${p}.${f}`)), 'routing_nodes.unassigned.index', 'routing_nodes.unassigned.shard', 'routing_nodes.unassigned.primary'];
    const excluded = (() => {
      const names = parseNames(settings[effectiveLayer(settings, EXCLUDE_NAME)][EXCLUDE_NAME]);
      return names.ok && names.names.includes(o.next as string);
    })();
    const drainStarts = strategy === 'drain' && !excluded;
    [copies, replicas, allocation, diskDefaults] = await Promise.all([
      // ~70 bytes a copy of that node; 64 MiB is far more than any node holds.
      es.get(`/_cluster/state/routing_nodes?${mt}&filter_path=${filter.join(',')}`, NodeCopiesAnswer, 64 << 20),
      strategy !== 'drain'
        ? es
            .get('/_all/_settings/index.number_of_replicas?expand_wildcards=all&filter_path=*.settings.index.number_of_replicas', ReplicasAnswer, 64 << 20)
            .then((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.settings.index.number_of_replicas])))
        : Promise.resolve(undefined),
      // Before a drain starts: is there room for the node's data elsewhere?
      drainStarts ? es.get('/_cat/allocation?format=json&bytes=b&h=node,shards,disk.indices,disk.used,disk.avail,disk.total', AllocationAnswer, 8 << 20) : Promise.resolve(undefined),
      // The disk decider may be configured in the nodes' own config, which the cluster settings do not show.
      drainStarts
        ? es.get(
            `/_cluster/settings?include_defaults=true&${mt}&filter_path=defaults.cluster.routing.allocation.disk.threshold_enabled,defaults.cluster.routing.allocation.disk.watermark.high`,
            DiskDefaultsAnswer,
          )
        : Promise.resolve(undefined),
    ]);
  }

  let redIndices: string[] | undefined;
  if (health.status === 'red') {
    // Only to name them in the reason: the hold does not depend on it.
    try {
      const ih = await es.get(`/_cluster/health?level=indices&${mt}&filter_path=indices.*.status`, IndexHealthAnswer, 16 << 20);
      redIndices = Object.entries(ih.indices ?? {})
        .filter(([, v]) => v.status === 'red')
        .map(([k]) => k)
        .sort();
    } catch {
      redIndices = undefined;
    }
  }
  const v = clusterView(
    { ...base, ...(copies ? { copies } : {}), ...(replicas ? { replicas } : {}), ...(allocation ? { allocation } : {}), ...(diskDefaults ? { diskDefaults } : {}), ...(redIndices ? { redIndices } : {}) },
    o.markerKey,
    o.next !== undefined,
  );
  if (!v.ok) throw new HookNotReady(`Elasticsearch at ${es.url}: ${v.error}`);
  return { view: v.view, strategy };
}
