import { HookNotReady } from '../../lib/hook.ts';
import { ClusterAnswer, ConfigAnswer, MemberAnswer } from './answers.ts';
import type { PatroniClient } from './client.ts';
import { type ClusterView, clusterView, configOf, type DcsConfig, type MemberSelf, selfOf } from './view.ts';

/**
 * Reads what a decision needs, afresh: the member list from the first address
 * that answers /cluster (every member serves the DCS's view), then each member's
 * own /patroni, in parallel. A member that does not answer is in the view with
 * the reason: the decisions hold on it, they never guess. With `config`, also
 * the DCS's dynamic configuration (GET /config) from the address that answered
 * /cluster; failing that read is a reason in the view, like a member's.
 */
/** GET /cluster of the first seed that answers, and that seed. */
export async function firstCluster(client: PatroniClient, seeds: readonly string[]): Promise<{ cluster: ClusterAnswer; answered: string }> {
  if (seeds.length === 0) throw new HookNotReady('no address to reach Patroni: no pod with an IP, and no url option');
  const errors: string[] = [];
  for (const seed of seeds) {
    try {
      return { cluster: await client.get(`${seed}/cluster`, ClusterAnswer), answered: seed };
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  throw new HookNotReady(errors.length === 1 ? (errors[0] as string) : `no member answers /cluster: ${errors.join('; ')}`);
}

export async function readCluster(client: PatroniClient, seeds: readonly string[], o: { config?: boolean } = {}): Promise<ClusterView> {
  const { cluster, answered } = await firstCluster(client, seeds);
  const selves = new Map<string, MemberSelf>();
  let config: DcsConfig | undefined;
  await Promise.all([
    ...cluster.members.map(async (m) => {
      if (!m.api_url) return;
      try {
        selves.set(m.name, selfOf(await client.get(m.api_url, MemberAnswer)));
      } catch (err) {
        selves.set(m.name, { ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    }),
    (async () => {
      if (!o.config) return;
      try {
        config = configOf(await client.get(`${answered}/config`, ConfigAnswer));
      } catch (err) {
        config = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    })(),
  ]);
  const view = clusterView(cluster, selves);
  return config ? { ...view, config } : view;
}
