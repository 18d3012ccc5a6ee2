import { HookNotReady } from '../../lib/hook.ts';
import { HealthAnswer, IndexHealthAnswer, SettingsAnswer, StateAnswer } from './answers.ts';
import type { EsClient } from './client.ts';
import { type ClusterView, clusterView } from './view.ts';

/**
 * Reads what a decision needs, afresh. Reads go to the elected master
 * (cluster-level APIs), so whichever node the URL reaches, they agree; a
 * master_timeout below our own timeout makes a cluster without a master say
 * so, instead of leaving us to time out.
 */
export async function readCluster(es: EsClient, o: { markerKey: string; withShards: boolean; timeoutSeconds: number }): Promise<ClusterView> {
  const mt = `master_timeout=${Math.max(1, Math.floor(o.timeoutSeconds / 2))}s`;
  const stateFilter = ['cluster_uuid', 'nodes.*.name', 'nodes.*.version'];
  if (o.withShards) for (const f of ['state', 'index', 'shard', 'primary']) stateFilter.push(`routing_nodes.nodes.*.${f}`);
  const [health, settings, state] = await Promise.all([
    es.get(`/_cluster/health?${mt}`, HealthAnswer),
    es.get(`/_cluster/settings?flat_settings=true&${mt}`, SettingsAnswer),
    // Every shard copy, a few fields each: ~70 bytes a copy, so 64 MiB covers ~900k copies.
    es.get(`/_cluster/state/${o.withShards ? 'nodes,routing_nodes' : 'nodes'}?${mt}&filter_path=${stateFilter.join(',')}`, StateAnswer, 64 << 20),
  ]);
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
  const v = clusterView({ health, settings, state, ...(redIndices ? { redIndices } : {}) }, o.markerKey, o.withShards);
  if (!v.ok) throw new HookNotReady(`Elasticsearch at ${es.url}: ${v.error}`);
  return v.view;
}
