import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { hooks } from '../../hooks/index.ts';
import { hookProblemOf, type StatusItem } from '../../lib/cli/model.ts';

// StatefulSets and pods as the API returns them, for the CLI's unit tests.

export const T0 = Date.parse('2026-11-03T12:00:00Z');
export const LABEL = 'sts-pilot.io/hook';
export const rev = (letter: string): string => `web-${letter.toLowerCase().repeat(4)}${letter === 'A' ? '1111' : '2222'}x`;

export interface World {
  replicas?: number;
  /** One token per ordinal, as in test/unit/fixtures.ts: 'A' ready at A, 'B!' not Ready, 'B~' terminating, '-' missing. */
  pods?: string;
  partition?: number;
  cur?: string;
  upd?: string;
  hook?: string | null;
  strategy?: string;
  annotations?: Record<string, string>;
  status?: { state?: string; message?: string; sinceAgoMs?: number; rollout?: { revision: string; partition: number }; removal?: { pod: string; uid: string; index: number; state: 'asked' | 'approved' } };
}

/** A StatefulSet and its pods as the API returns them, from a compact description. */
export function world(w: World): StatusItem {
  const cur = rev(w.cur ?? 'A');
  const upd = rev(w.upd ?? 'A');
  const annotations: Record<string, string> = { ...w.annotations };
  if (w.status) {
    const { sinceAgoMs, rollout, ...rest } = w.status;
    annotations['sts-pilot.io/status'] = JSON.stringify({
      ...(rollout ? { rollout: { revision: rev(rollout.revision), partition: rollout.partition } } : {}),
      ...rest,
      ...(sinceAgoMs !== undefined ? { since: new Date(T0 - sinceAgoMs).toISOString() } : {}),
    });
  }
  const sts: V1StatefulSet = {
    metadata: {
      name: 'web',
      namespace: 'db',
      uid: 'sts-uid',
      resourceVersion: '7',
      generation: 2,
      labels: w.hook === null ? {} : { [LABEL]: w.hook ?? 'manual' },
      annotations,
    },
    spec: {
      replicas: w.replicas ?? 3,
      selector: { matchLabels: { app: 'web' } },
      serviceName: 'web',
      template: {},
      updateStrategy:
        (w.strategy ?? 'RollingUpdate') === 'RollingUpdate'
          ? { type: 'RollingUpdate', ...(w.partition !== undefined ? { rollingUpdate: { partition: w.partition } } : {}) }
          : { type: w.strategy },
    },
    status: { observedGeneration: 2, replicas: w.replicas ?? 3, currentRevision: cur, updateRevision: upd },
  };
  const pods: V1Pod[] = [];
  (w.pods ?? 'A A A')
    .split(/\s+/)
    .filter(Boolean)
    .forEach((tok, ordinal) => {
      if (tok === '-') return;
      const ready = !tok.includes('!') && !tok.includes('~');
      pods.push({
        metadata: {
          name: `web-${ordinal}`,
          namespace: 'db',
          uid: `pod-${ordinal}-${tok}`,
          labels: { 'controller-revision-hash': rev(tok[0] ?? 'A'), 'apps.kubernetes.io/pod-index': String(ordinal) },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'sts-uid', controller: true }],
          ...(tok.includes('~') ? { deletionTimestamp: new Date(T0 - 1000) } : {}),
        },
        status: {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date(T0 - 3_600_000) }],
        },
      });
    });
  return { sts, pods, hookProblem: hookProblemOf(hooks, sts, LABEL) };
}

