import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { rememberTemplate } from '../rollout/snapshot.ts';

// What the caches keep of each object: exactly what the planner, the guard, the
// writer and the Pilot provisioner read. A hook gets the full objects, read when
// it is called (lib/controller/hook-runner.ts). At 10,000 StatefulSets of 3 pods
// this is the difference between the whole objects (a pod is ~4 KiB of JSON,
// more as JavaScript) and a few hundred bytes each.

/** A pod: identity, labels (revision, index), its controller, deletion, phase and Ready. */
export function projectPod(pod: V1Pod): V1Pod {
  const md = pod.metadata ?? {};
  const controller = md.ownerReferences?.find((r) => r.controller);
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    metadata: {
      name: md.name,
      namespace: md.namespace,
      uid: md.uid,
      resourceVersion: md.resourceVersion,
      labels: md.labels,
      ...(controller ? { ownerReferences: [controller] } : {}),
      ...(md.deletionTimestamp ? { deletionTimestamp: md.deletionTimestamp } : {}),
    },
    status: { phase: pod.status?.phase, ...(ready ? { conditions: [ready] } : {}) },
  };
}

/**
 * A StatefulSet without its pod template (the bulk of it): its fingerprint is
 * taken first (statefulSetView reads it). Metadata stays whole: the guarded
 * patch tests labels and annotations as they are.
 */
export function projectStatefulSet(sts: V1StatefulSet): V1StatefulSet {
  const spec = sts.spec;
  const { managedFields: _dropped, ...metadata } = sts.metadata ?? {};
  const out = {
    metadata,
    spec: spec && {
      replicas: spec.replicas,
      selector: spec.selector,
      serviceName: spec.serviceName,
      updateStrategy: spec.updateStrategy,
      podManagementPolicy: spec.podManagementPolicy,
      minReadySeconds: spec.minReadySeconds,
      ordinals: spec.ordinals,
      persistentVolumeClaimRetentionPolicy: spec.persistentVolumeClaimRetentionPolicy,
    },
    status: sts.status,
  } as V1StatefulSet;
  rememberTemplate(out, spec?.template);
  return out;
}
