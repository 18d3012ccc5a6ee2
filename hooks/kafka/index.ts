import type { V1Pod } from '@kubernetes/client-node';
import { describeError } from '../../lib/errors.ts';
import { defineHook, type HookContext, HookNotReady } from '../../lib/hook.ts';
import type { KafkaAdmin } from '../../lib/kafka/admin.ts';
import { brokerRefOf, type PilotSays } from './broker-ref.ts';
import { connect } from './client.ts';
import { type BrokerRef, decide } from './decide.ts';
import { Options } from './options.ts';
import { readCluster } from './read.ts';
import type { KafkaView } from './view.ts';

async function brokerRef(pod: V1Pod | null, ctx: HookContext<Options>): Promise<{ ref: BrokerRef; pilot?: PilotSays } | null> {
  if (!pod) return null;
  const name = pod.metadata?.name ?? '';
  let pilot: unknown;
  try {
    pilot = ctx.pilots.get(name);
  } catch (err) {
    throw new HookNotReady(`cannot read the Pilot of ${name}: ${describeError(err, 200)}`);
  }
  const r = brokerRefOf(pod, ctx.statefulSet, ctx.options.nodeIdOffset, pilot);
  if (!r.ok) throw new HookNotReady(r.error);
  return r;
}

/**
 * The cluster as the first bootstrap broker that answers in full sees it. A
 * broker that accepts connections but does not answer (frozen, overloaded)
 * costs one timeout, then the next one is asked.
 */
async function readAny(ctx: HookContext<Options>): Promise<{ view: KafkaView; via: string }> {
  const failures: string[] = [];
  for (const b of ctx.options.bootstrap) {
    let admin: KafkaAdmin | undefined;
    try {
      admin = await connect(ctx, b);
      return { view: await readCluster(admin), via: admin.broker };
    } catch (err) {
      if (!(err instanceof HookNotReady) || ctx.signal.aborted) throw err;
      failures.push(err.message);
    } finally {
      await admin?.close();
    }
  }
  throw new HookNotReady(failures.length === 1 ? (failures[0] as string) : `no bootstrap broker answered: ${failures.join('; ')}`);
}

/**
 * Kafka in KRaft mode: a broker restarts only when no partition it hosts falls
 * below min.insync.replicas, nothing else is under-replicated, the controller
 * quorum keeps a caught-up majority and the active controller goes last; the
 * next one waits until it is back and caught up. See docs/kafka.md.
 */
export const kafkaHook = defineHook({
  name: 'kafka',
  description: 'KRaft: a broker restarts only if every partition it hosts keeps min.insync.replicas and the quorum a caught-up majority; active controller last',
  options: Options,
  async podUpdateTransition(prev, next, ctx) {
    const [p, n] = await Promise.all([brokerRef(prev, ctx), brokerRef(next, ctx)]);
    const { view, via } = await readAny(ctx);
    for (const x of [p, n]) {
      if (x?.pilot?.clusterId && x.pilot.clusterId !== view.clusterId) {
        throw new HookNotReady(`the Pilot of ${x.ref.pod} reports Kafka cluster ${x.pilot.clusterId}, but the bootstrap servers reach cluster ${view.clusterId}`);
      }
    }
    const d = decide(view, p?.ref ?? null, n?.ref ?? null, ctx.options.activeController);
    if (d.kind === 'hold') throw new HookNotReady(d.reason);
    ctx.log.child({ hook: 'kafka', prev: p?.ref.id ?? null, next: n?.ref.id ?? null }).info({ note: d.note, via }, 'approved');
  },
});
