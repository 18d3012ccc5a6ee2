import type { AppliedOverride, PolicyInputs } from '../../lib/rollout/policies/types.ts';
import type { Approval, PodView, Snapshot, StatefulSetView } from '../../lib/rollout/snapshot.ts';
import type { OrderRecord, RemovalRecord, RolloutMark } from '../../lib/rollout/status.ts';

/**
 * Pods written as one token per ordinal: the revision letter, then flags.
 *   'A'  ready pod at revision A     'B!' not Ready      'B~' terminating
 *   '-'  no pod with that ordinal    'A+' pod beyond replicas (scale-down leftover)
 */
export function pods(spec: string, now = 1_000_000, start = 0): PodView[] {
  const out: PodView[] = [];
  spec
    .split(/\s+/)
    .filter(Boolean)
    .forEach((tok, index) => {
      if (tok === '-') return;
      const revision = tok[0] === '?' ? undefined : tok[0];
      const ready = !tok.includes('!') && !tok.includes('~');
      const ordinal = start + index;
      out.push({
        name: `web-${ordinal}`,
        uid: `uid-${ordinal}-${revision}`,
        resourceVersion: `rv-${ordinal}-${tok}`,
        ordinal,
        index,
        revision,
        ready,
        readySince: ready ? now - 3_600_000 : undefined,
        terminating: tok.includes('~'),
      });
    });
  return out;
}

export interface SnapOpts {
  replicas?: number;
  partition?: number;
  cur?: string;
  upd?: string;
  pods?: string;
  mark?: RolloutMark;
  strategy?: string;
  paused?: string;
  generation?: number;
  observedGeneration?: number;
  minReadySeconds?: number;
  approval?: Approval;
  hookProblem?: string;
  now?: number;
  /** spec.ordinals.start */
  start?: number;
  podManagementPolicy?: string;
  /** Template fingerprint now, and the one the status annotation records. */
  template?: string;
  heldTemplate?: string;
  heldRevision?: string;
  hookConfig?: string;
  /** The hook has podUpdateOrder, and its recorded answer. */
  hookOrders?: boolean;
  order?: OrderRecord;
  /** Rollout policy annotations (sts-pilot.io/window, …) and what else they need. */
  annotations?: Record<string, string>;
  policy?: PolicyInputs;
  /** The override the status annotation records as applied. */
  applied?: AppliedOverride;
  /** sts-pilot.io/requested-replicas, raw. */
  requested?: string;
  /** The scale-down's record in the status annotation. */
  removal?: RemovalRecord;
}

export function snap(o: SnapOpts): Snapshot {
  const now = o.now ?? 1_000_000;
  const sts: StatefulSetView = {
    namespace: 'default',
    name: 'web',
    uid: 'sts-uid',
    resourceVersion: '100',
    generation: o.generation ?? 2,
    observedGeneration: 'observedGeneration' in o ? o.observedGeneration : (o.generation ?? 2),
    replicas: o.replicas ?? 5,
    ordinalsStart: o.start ?? 0,
    strategy: o.strategy ?? 'RollingUpdate',
    podManagementPolicy: o.podManagementPolicy ?? 'OrderedReady',
    templateHash: o.template ?? 'tB',
    heldTemplate: 'heldTemplate' in o ? o.heldTemplate : (o.template ?? 'tB'),
    heldRevision: o.heldRevision,
    partition: o.partition,
    minReadySeconds: o.minReadySeconds ?? 0,
    currentRevision: o.cur ?? 'A',
    updateRevision: o.upd ?? 'B',
    paused: o.paused,
    mark: o.mark,
    order: o.order,
    statusError: undefined,
    policyAnnotations: o.annotations ?? {},
    override: o.applied,
    requestedReplicas: o.requested,
    removal: o.removal,
  };
  return {
    sts,
    pods: pods(o.pods ?? 'A A A A A', now, o.start ?? 0),
    now,
    approval: o.approval,
    hookProblem: o.hookProblem,
    hookConfig: o.hookConfig ?? '["noop",[]]',
    hookOrders: o.hookOrders,
    ...(o.policy ? { policy: o.policy } : {}),
  };
}
