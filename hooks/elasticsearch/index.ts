import type { V1Pod } from '@kubernetes/client-node';
import { describeError } from '../../lib/errors.ts';
import { defineHook, type HookContext, HookNotReady } from '../../lib/hook.ts';
import { FlushAnswer, PutSettingsAnswer } from './answers.ts';
import { connect, type EsClient } from './client.ts';
import { type Decision, decideDrain, decideRestart, listOf } from './decide.ts';
import { type NodeRef, nodeRefOf, pilotsOf } from './node-ref.ts';
import { Options } from './options.ts';
import { readCluster } from './read.ts';
import { markerKey } from './settings.ts';

/**
 * A call writes at most this many times before it must have an answer. A step
 * needs two at most (restart: re-enable for the last node, then primaries for
 * the next); a cluster that ignores our writes gets a hold, not a loop.
 */
const MAX_WRITES = 3;

async function nodeRef(pod: V1Pod | null, ctx: HookContext<Options>): Promise<NodeRef | null> {
  if (!pod) return null;
  const name = pod.metadata?.name ?? '';
  let pilot: unknown;
  const pilots = pilotsOf(ctx);
  if (pilots) {
    try {
      pilot = await pilots.get(name);
    } catch (err) {
      throw new HookNotReady(`cannot read the Pilot of ${name}: ${describeError(err, 200)}`);
    }
  }
  const r = nodeRefOf(pod, pilot);
  if (!r.ok) throw new HookNotReady(r.error);
  return r.ref;
}

async function flush(es: EsClient): Promise<void> {
  // Makes the restarted node's copies recover from its own files instead of from peers.
  const f = await es.send('POST', '/_flush', undefined, FlushAnswer);
  if (f._shards.failed > 0) {
    const which = (f._shards.failures ?? []).map((x) => `${x.index ?? '?'}[${x.shard ?? '?'}]`);
    throw new HookNotReady(`flush failed on ${f._shards.failed} of ${f._shards.total} shards${which.length ? ` (${listOf(which)})` : ''}`);
  }
}

/**
 * Makes a StatefulSet rollout of Elasticsearch/OpenSearch take no data
 * offline: drains each node (allocation exclusion) before its pod is updated,
 * or runs the documented rolling restart (strategy restart). See
 * docs/elasticsearch.md.
 */
export const elasticsearchHook = defineHook({
  name: 'elasticsearch',
  description: 'drain each Elasticsearch/OpenSearch node of its shards before its pod is updated (or the documented rolling restart)',
  options: Options,
  async podUpdateTransition(prev, next, ctx) {
    const o = ctx.options;
    const md = ctx.statefulSet.metadata;
    if (!md?.name || !md.namespace) throw new HookNotReady('the StatefulSet has no name or namespace to key the hook state with');
    const key = markerKey(md.namespace, md.name);
    const [prevRef, nextRef] = await Promise.all([nodeRef(prev, ctx), nodeRef(next, ctx)]);
    const es = await connect(ctx);
    const decide = o.strategy === 'drain' ? decideDrain : decideRestart;
    const log = ctx.log.child({ hook: 'elasticsearch', strategy: o.strategy, prev: prevRef?.name ?? null, next: nextRef?.name ?? null });

    let d: Decision | undefined;
    for (let writes = 0; ; writes++) {
      // Shard copies only matter when a node is about to go.
      const view = await readCluster(es, { markerKey: key, withShards: nextRef !== null, timeoutSeconds: o.timeoutSeconds });
      d = decide(view, prevRef, nextRef, o.requiredHealth);
      if (d.kind !== 'write') break;
      if (writes === MAX_WRITES) throw new HookNotReady(`the cluster settings did not take our change after ${MAX_WRITES} writes (last: ${d.why})`);
      const ack = await es.send('PUT', '/_cluster/settings?flat_settings=true', d.write, PutSettingsAnswer);
      log.info({ change: d.why, settings: d.write, acknowledged: ack.acknowledged }, 'changed cluster settings');
    }
    if (d.kind === 'hold') throw new HookNotReady(d.reason);
    if (d.flush) await flush(es);
    log.info({ note: d.note }, 'approved');
  },
});
