import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describeError } from '../../lib/errors.ts';
import { defineHook, type HookContext, HookNotReady, type RemovalContext } from '../../lib/hook.ts';
import { AckAnswer, ExplainAnswer, FlushAnswer, PutSettingsAnswer, RootAnswer } from './answers.ts';
import { connect, type EsClient } from './client.ts';
import { type Decision, decideDrain, decideRestart, decideShutdown, explainText, healthText, listOf, notRejoined, type StepContext, stepHealthy, type StuckCopy, versionParts } from './decide.ts';
import { withClusterLock } from './lock.ts';
import { type NodeRef, nodeRefOf, pilotsOf } from './node-ref.ts';
import { Options, type Strategy, type StrategyOption } from './options.ts';
import { decideRemoval, decideRemovalCleanup } from './removal.ts';
import { readCluster } from './read.ts';
import { EXCLUDE_NAME, markerKey } from './settings.ts';
import type { ClusterView } from './view.ts';

/**
 * A call changes the cluster at most this many times before it must have an
 * answer. A step needs two at most (restart: re-enable for the last node, then
 * primaries for the next; shutdown: remove the last record, add the next); a
 * cluster that ignores our changes gets a hold, not a loop.
 */
const MAX_WRITES = 3;

function refOf(pod: V1Pod, ctx: HookContext<Options>): NodeRef {
  const name = pod.metadata?.name ?? '';
  let pilot: unknown;
  const pilots = pilotsOf(ctx);
  if (pilots) {
    try {
      pilot = pilots.get(name);
    } catch (err) {
      throw new HookNotReady(`cannot read the Pilot of ${name}: ${describeError(err, 200)}`);
    }
  }
  const r = nodeRefOf(pod, pilot);
  if (!r.ok) throw new HookNotReady(r.error);
  return r.ref;
}

/**
 * Every pod the StatefulSet has now, as the hook sees them: names from
 * replicas and ordinals.start, nodes from their Pilots. Only prev and next
 * come as Pod objects; the others are taken as Ready (the controller requires
 * it before a step) and the cluster's member list judges them.
 */
function podsOf(sts: V1StatefulSet, ctx: HookContext<Options>, given: (V1Pod | null)[]): NodeRef[] {
  const name = sts.metadata?.name ?? '';
  const replicas = sts.spec?.replicas ?? 1;
  const start = sts.spec?.ordinals?.start ?? 0;
  const out: NodeRef[] = [];
  for (let i = start; i < start + replicas; i++) {
    const podName = `${name}-${i}`;
    const pod = given.find((p) => p?.metadata?.name === podName) ?? {
      metadata: { name: podName, uid: ctx.pilots?.get(podName)?.metadata.ownerReferences?.find((r) => r.kind === 'Pod')?.uid },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    out.push(refOf(pod as V1Pod, ctx));
  }
  return out;
}

/** The version the pod template runs: the option, else the first container image tag that is a version. */
function targetVersion(sts: V1StatefulSet, o: Options): string | undefined {
  if (o.version) return o.version;
  for (const c of sts.spec?.template?.spec?.containers ?? []) {
    const tag = /:([^:/@]+)(@.*)?$/.exec(c.image ?? '')?.[1];
    if (tag && versionParts(tag)) return tag;
  }
  return undefined;
}

async function flush(es: EsClient): Promise<void> {
  // Makes the restarted node's copies recover from its own files instead of from peers.
  const f = await es.send('POST', '/_flush', undefined, FlushAnswer);
  if (f._shards.failed > 0) {
    const which = (f._shards.failures ?? []).map((x) => `${x.index ?? '?'}[${x.shard ?? '?'}]`);
    throw new HookNotReady(`flush failed on ${f._shards.failed} of ${f._shards.total} shards${which.length ? ` (${listOf(which)})` : ''}`);
  }
}

/** The decider's words for a copy that does not leave a draining node, or undefined. */
async function explain(es: EsClient, copy: StuckCopy): Promise<string | undefined> {
  try {
    const e = await es.send(
      'POST',
      '/_cluster/allocation/explain',
      { index: copy.index, shard: copy.shard, primary: copy.primary, current_node: copy.nodeId },
      ExplainAnswer,
    );
    return explainText(e, copy);
  } catch {
    // Only an addition to the reason: the hold stands without it.
    return undefined;
  }
}

const DECIDE: Record<Strategy, typeof decideDrain> = { drain: decideDrain, restart: decideRestart, shutdown: decideShutdown };

/** After a settings write: did it take? Names we added must be excluded, names we removed must not (a concurrent writer would show here). */
function verify(before: ClusterView, after: ClusterView, d: Extract<Decision, { kind: 'write' }>): string | undefined {
  const wanted = [d.write.persistent[EXCLUDE_NAME], d.write.transient[EXCLUDE_NAME]].filter((v) => v !== undefined);
  if (wanted.length === 0) return undefined;
  const added = after.marker.exclude.filter((n) => !before.marker.exclude.includes(n));
  const lost = added.filter((n) => !after.exclusion.includes(n));
  if (lost.length) return `${listOf(lost)} missing from ${EXCLUDE_NAME} right after sts-pilot wrote it: another writer changed the setting at the same time`;
  const removed = before.marker.exclude.filter((n) => !after.marker.exclude.includes(n));
  const back = removed.filter((n) => after.exclusion.includes(n) && !before.exclusion.filter((x) => !before.marker.exclude.includes(x)).includes(n));
  if (back.length) {
    return `${listOf(back)} still in ${EXCLUDE_NAME} right after sts-pilot removed ${back.length === 1 ? 'it' : 'them'}: another writer changed the setting at the same time; it is now taken for a person's exclusion`;
  }
  return undefined;
}

/**
 * Makes a StatefulSet rollout of Elasticsearch/OpenSearch take no data
 * offline: drains each node (allocation exclusion) before its pod is updated,
 * restarts it in place with the node shutdown API (Elasticsearch >= 7.15.2),
 * or runs the documented rolling restart (strategy restart). See
 * docs/elasticsearch.md.
 */
export const elasticsearchHook = defineHook({
  name: 'elasticsearch',
  description: 'drain each Elasticsearch/OpenSearch node of its shards before its pod is updated, or restart it in place (node shutdown API, rolling restart); drain a leaving node and take it out of the voting configuration',
  options: Options,
  async podUpdateTransition(prev, next, ctx) {
    const o = ctx.options;
    const sts = ctx.statefulSet;
    const prevRef = prev ? refOf(prev, ctx) : null;
    const nextRef = next ? refOf(next, ctx) : null;
    const step = stepOf(sts, ctx, [prev, next]);
    const target = targetVersion(sts, o);
    if (target) step.target = target;
    const log = ctx.log.child({ hook: 'elasticsearch', prev: prevRef?.name ?? null, next: nextRef?.name ?? null });
    await run(ctx, o.strategy, nextRef?.name, log, (view, strategy) => DECIDE[strategy](view, prevRef, nextRef, o.requiredHealth, step));
  },
  // Several StatefulSets (tiers, zones) of one cluster share one disruption budget: the cluster is its UUID.
  async applicationCluster(ctx) {
    const es = await connect(ctx as HookContext<Options>);
    const root = await es.get('/?filter_path=cluster_uuid', RootAnswer);
    if (root.cluster_uuid === '_na_') throw new HookNotReady(`Elasticsearch at ${es.url} has not formed a cluster yet (no cluster UUID)`);
    return root.cluster_uuid;
  },
  // A moved pod holds its slot of the budget until its node is a member again (as its Pilot says) and health is as required.
  async podRejoined(pod, octx) {
    const ctx = { ...octx, nextReady: null } as HookContext<Options>;
    const ref = refOf(pod, ctx);
    const md = ctx.statefulSet.metadata ?? {};
    const es = await connect(ctx);
    const { view } = await readCluster(es, { markerKey: markerKey(md.namespace ?? '', md.name ?? ''), strategy: 'drain', timeoutSeconds: ctx.options.timeoutSeconds });
    const why = notRejoined(view, ref);
    // Said through the budget's wait (routine): how far the pod that holds the slot is on its way back.
    if (why) throw new HookNotReady(why);
    if (!stepHealthy(view, ctx.options.requiredHealth)) throw new HookNotReady(`${ref.name} is back; waiting for health ${ctx.options.requiredHealth}: cluster is ${healthText(view)}`);
  },
  // A node that leaves for good is drained whatever the strategy (its data has nowhere to come back to).
  async podRemoval(pod, rctx) {
    const ctx = asHookContext(rctx);
    const leaving = refOf(pod, ctx);
    const step = { ...stepOf(ctx.statefulSet, ctx, [pod]), timeoutSeconds: ctx.options.timeoutSeconds };
    const log = ctx.log.child({ hook: 'elasticsearch', removal: leaving.name });
    await run(ctx, 'drain', leaving.name, log, (view) => decideRemoval(view, leaving, ctx.options.requiredHealth, step));
  },
  async podRemoved(pod, outcome, rctx) {
    const ctx = asHookContext(rctx);
    // The pod may be gone: its node's name from its Pilot if it is still cached, else the pod's name.
    const gone = refOf({ ...pod, status: { conditions: [{ type: 'Ready', status: outcome === 'withdrawn' ? 'True' : 'False' }] } }, ctx);
    const step = stepOf(ctx.statefulSet, ctx, []);
    const log = ctx.log.child({ hook: 'elasticsearch', removed: gone.name, outcome });
    await run(ctx, 'drain', undefined, log, (view) => decideRemovalCleanup(view, gone, outcome, ctx.options.requiredHealth, step));
  },
});

/** What podRemoval and podRemoved are given, as the rest of this hook reads a context. */
function asHookContext(ctx: RemovalContext<Options>): HookContext<Options> {
  return { ...ctx, nextReady: ctx.podReady };
}

function stepOf(sts: V1StatefulSet, ctx: HookContext<Options>, given: (V1Pod | null)[]): StepContext {
  const md = sts.metadata;
  if (!md?.name || !md.namespace) throw new HookNotReady('the StatefulSet has no name or namespace to key the hook state with');
  return {
    pods: podsOf(sts, ctx, given),
    owner: `${md.namespace}/${md.name}`,
    ...(ctx.options.allocationDelay ? { allocationDelay: ctx.options.allocationDelay } : {}),
  };
}

/**
 * One call: read, decide, and while the decision is a change, make it under the
 * cluster's lock and decide again on a fresh read; approve or hold at the end.
 */
async function run(
  ctx: HookContext<Options>,
  strategyOption: StrategyOption,
  next: string | undefined,
  log: HookContext<Options>['log'],
  decide: (view: ClusterView, strategy: Strategy) => Decision,
): Promise<void> {
  const o = ctx.options;
  const md = ctx.statefulSet.metadata ?? {};
  const es = await connect(ctx);
  const plan = { markerKey: markerKey(md.namespace ?? '', md.name ?? ''), strategy: strategyOption, timeoutSeconds: o.timeoutSeconds, ...(next ? { next } : {}) };
  let { view, strategy } = await readCluster(es, plan);
  let d = decide(view, strategy);
  if (d.kind === 'write' || d.kind === 'request') {
    // Changes are made one cluster at a time, each decided on a read made under the lock.
    d = await withClusterLock(view.uuid, ctx.signal, async () => {
      for (let writes = 0; ; writes++) {
        ({ view, strategy } = await readCluster(es, plan));
        const now = decide(view, strategy);
        if (now.kind !== 'write' && now.kind !== 'request') return now;
        if (writes === MAX_WRITES) throw new HookNotReady(`the cluster did not take our change after ${MAX_WRITES} tries (last: ${now.why})`);
        if (now.kind === 'write') {
          const ack = await es.send('PUT', '/_cluster/settings?flat_settings=true', now.write, PutSettingsAnswer);
          log.info({ strategy, change: now.why, settings: now.write, acknowledged: ack.acknowledged }, 'changed cluster settings');
          const after = (await readCluster(es, plan)).view;
          const problem = verify(view, after, now);
          if (problem) throw new HookNotReady(problem);
        } else {
          await es.send(now.method, now.path, now.body, AckAnswer);
          log.info({ strategy, change: now.why, request: `${now.method} ${now.path}` }, 'changed the cluster');
        }
      }
    });
  }
  if (d.kind === 'hold') {
    const why = d.explain ? await explain(es, d.explain) : undefined;
    throw new HookNotReady(why ? `${d.reason}; ${why}` : d.reason, { routine: d.routine === true });
  }
  if (d.flush) await flush(es);
  log.info({ strategy, note: d.note, requests: es.stats.requests, bytes: es.stats.bytes }, 'approved');
}
