import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import { Informer } from '../kube/informer.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { API_GROUP, API_VERSION, FIELD_MANAGER } from '../names.ts';
import { isFresh, type PilotReader } from './reader.ts';
import { parsePilot, PILOT_API_VERSION, podOwnerUid, PILOT_KIND, PILOT_PLURAL, PILOT_STATEFULSET_LABEL, type Pilot, PilotSpec } from './schema.ts';

export type RawPilot = KubernetesObject & { spec?: unknown; status?: unknown };

export interface PilotManagerOptions {
  kc: KubeConfig;
  log: Logger;
  /** Watch one namespace; all when undefined. */
  namespace?: string;
  /**
   * A Pilot appeared, went away, or its status changed (a heartbeat included:
   * it can turn a stale Pilot fresh). Called synchronously from the watch:
   * queue work, do none here.
   */
  onChange?: (namespace: string, statefulSet: string, pilot: string) => void;
  metrics?: Pick<Metrics, 'apiErrors' | 'watchRestarts'>;
  now?: () => number;
}

export interface EnsureResult {
  created: string[];
  /** Pilots left by an earlier pod of the same name, deleted and made anew. */
  replaced: string[];
  /** Pilots whose spec was brought in line. */
  updated: string[];
  failed: { pod: string; error: string }[];
}

/** A write of ours the cache does not show yet, or a failure not to retry yet. */
interface Pending {
  podUid: string;
  until: number;
  failures: number;
}

/** How long we trust our own create before the watch shows it. */
const CREATED_TTL_MS = 30_000;
const RETRY_BASE_MS = 2_000;
const RETRY_MAX_MS = 5 * 60_000;

const k = (ns: string, name: string): string => `${ns}/${name}`;

/**
 * The controller's side of Pilots: one per pod of a subscribed StatefulSet,
 * same name, owned by the pod so the garbage collector deletes it with the pod.
 * Reads come from an informer's cache; ensurePilots writes only what is
 * missing or wrong, so a reconcile where nothing changed makes no API call.
 */
export class PilotManager {
  private readonly o: PilotManagerOptions;
  private readonly api: CustomObjectsApi;
  private readonly informer: Informer<RawPilot>;
  /** Last status seen per Pilot, to tell status changes from metadata-only updates. */
  private readonly lastStatus = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();
  private readonly unreadable = new Set<string>();
  private readonly now: () => number;

  constructor(o: PilotManagerOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.api = o.kc.makeApiClient(CustomObjectsApi);
    const ns = o.namespace;
    const base = `/apis/${API_GROUP}/${API_VERSION}`;
    this.informer = new Informer<RawPilot>({
      kc: o.kc,
      path: ns ? `${base}/namespaces/${ns}/${PILOT_PLURAL}` : `${base}/${PILOT_PLURAL}`,
      // Only the Pilots we made: a Pilot without the label is not ours to read.
      labelSelector: PILOT_STATEFULSET_LABEL,
      log: o.log,
      listPage: async (token) => {
        const common = { group: API_GROUP, version: API_VERSION, plural: PILOT_PLURAL, labelSelector: PILOT_STATEFULSET_LABEL, limit: 500, _continue: token };
        const list: unknown = ns
          ? await this.api.listNamespacedCustomObject({ ...common, namespace: ns })
          : await this.api.listClusterCustomObject(common);
        return list as KubernetesListObject<RawPilot>;
      },
      onChange: (p, verb) => this.onPilot(p, verb),
      onRestart: () => o.metrics?.watchRestarts.inc({ resource: 'pilots' }),
    });
  }

  /** Resolves once the cache holds every Pilot (the CRD must be installed). */
  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }

  /** Pilots of one namespace, read from the cache. */
  reader(namespace: string): PilotReader {
    return {
      get: (podName) => this.get(namespace, podName),
      isFresh: (p, maxAgeMs) => isFresh(p, maxAgeMs, this.now()),
    };
  }

  get(namespace: string, podName: string): Pilot | undefined {
    const raw = this.informer.get(podName, namespace);
    if (!raw) return undefined;
    const parsed = parsePilot(raw);
    const id = `${k(namespace, podName)}@${raw.metadata?.resourceVersion ?? ''}`;
    if ('error' in parsed || parsed.statusError) {
      // Once per version of the object: readers call this on every hook call.
      if (!this.unreadable.has(id)) {
        this.unreadable.add(id);
        if (this.unreadable.size > 10_000) this.unreadable.clear();
        const error = 'error' in parsed ? parsed.error : parsed.statusError;
        this.o.log.warn({ pilot: k(namespace, podName), error }, 'unreadable Pilot: its status counts as unknown');
      }
    }
    return 'error' in parsed ? undefined : parsed.pilot;
  }

  /**
   * Make sure every live pod has its Pilot with this spec. Pods being deleted
   * get none (the garbage collector is about to take it). Never throws: a
   * failure is reported, logged, and retried on a later call after a backoff.
   */
  async ensurePilots(sts: V1StatefulSet, pods: readonly V1Pod[], application: string, options?: Record<string, string>): Promise<EnsureResult> {
    const result: EnsureResult = { created: [], replaced: [], updated: [], failed: [] };
    const ns = sts.metadata?.namespace;
    const stsName = sts.metadata?.name;
    if (!ns || !stsName) return result;
    const spec = PilotSpec.parse(options && Object.keys(options).length > 0 ? { application, options } : { application });
    const now = this.now();
    for (const pod of pods) {
      const name = pod.metadata?.name;
      const uid = pod.metadata?.uid;
      if (!name || !uid || pod.metadata?.deletionTimestamp) continue;
      const id = k(ns, name);
      const cached = this.informer.get(name, ns);
      const pend = this.pending.get(id);
      if (cached && podOwnerUid(cached) === uid && sameSpec(cached.spec, spec)) {
        if (pend) this.pending.delete(id);
        continue;
      }
      // Our last write is on its way to the cache, or the last attempt failed recently.
      if (pend?.podUid === uid && now < pend.until) continue;
      try {
        const did = await this.ensureOne(ns, stsName, pod, spec, cached);
        if (did !== 'none') result[did].push(name);
        this.pending.set(id, { podUid: uid, until: this.now() + CREATED_TTL_MS, failures: 0 });
      } catch (err) {
        const failures = (pend?.podUid === uid ? pend.failures : 0) + 1;
        const delay = Math.min(RETRY_BASE_MS * 2 ** (failures - 1), RETRY_MAX_MS);
        this.pending.set(id, { podUid: uid, until: this.now() + delay, failures });
        const code = statusCode(err);
        this.o.metrics?.apiErrors.inc({ operation: 'ensure_pilot', code: String(code ?? 'none') });
        const error = describeError(err);
        result.failed.push({ pod: name, error });
        this.o.log.warn({ pilot: id, err: error, retryInMs: delay }, 'could not create the Pilot of a pod');
      }
    }
    for (const name of [...result.created, ...result.replaced]) this.o.log.info({ pilot: k(ns, name) }, 'created Pilot');
    return result;
  }

  private async ensureOne(ns: string, stsName: string, pod: V1Pod, spec: PilotSpec, cached: RawPilot | undefined): Promise<'created' | 'replaced' | 'updated' | 'none'> {
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? '';
    if (cached && podOwnerUid(cached) === uid) {
      await this.api.patchNamespacedCustomObject(
        { group: API_GROUP, version: API_VERSION, namespace: ns, plural: PILOT_PLURAL, name, body: { spec: { application: spec.application, options: spec.options ?? null } }, fieldManager: FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return 'updated';
    }
    let replaced = false;
    if (cached) {
      // Left by an earlier pod of this name: the garbage collector would take it, but later.
      await this.deleteStale(ns, name, cached.metadata?.uid);
      replaced = true;
    }
    try {
      await this.create(ns, stsName, pod, spec);
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
      // The cache is behind, or a Pilot of this name exists without our label.
      const current = (await this.api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: PILOT_PLURAL, name })) as RawPilot;
      if (podOwnerUid(current) === uid) return 'none';
      await this.deleteStale(ns, name, current.metadata?.uid);
      await this.create(ns, stsName, pod, spec);
      replaced = true;
    }
    return replaced ? 'replaced' : 'created';
  }

  private async create(ns: string, stsName: string, pod: V1Pod, spec: PilotSpec): Promise<void> {
    const name = pod.metadata?.name ?? '';
    await this.api.createNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace: ns,
      plural: PILOT_PLURAL,
      fieldManager: FIELD_MANAGER,
      body: {
        apiVersion: PILOT_API_VERSION,
        kind: PILOT_KIND,
        metadata: {
          name,
          namespace: ns,
          labels: { [PILOT_STATEFULSET_LABEL]: stsName, 'app.kubernetes.io/managed-by': 'sts-pilot' },
          // The pod is the Pilot's only owner: the garbage collector deletes the
          // Pilot once the pod is gone. blockOwnerDeletion stays false: a pod's
          // deletion must never wait on its Pilot (and setting it true needs
          // update rights on pods/finalizers).
          ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata?.uid ?? '', controller: true, blockOwnerDeletion: false }],
        },
        spec,
      },
    });
  }

  private async deleteStale(ns: string, name: string, pilotUid: string | undefined): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace: ns,
        plural: PILOT_PLURAL,
        name,
        // Only the object we looked at: never a newer one made meanwhile.
        body: pilotUid ? { preconditions: { uid: pilotUid } } : {},
      });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
  }

  private onPilot(p: RawPilot, verb: 'add' | 'update' | 'delete'): void {
    const ns = p.metadata?.namespace ?? '';
    const name = p.metadata?.name ?? '';
    const id = k(ns, name);
    const status = JSON.stringify(p.status ?? null);
    if (verb === 'delete') this.lastStatus.delete(id);
    else {
      const before = this.lastStatus.get(id);
      this.lastStatus.set(id, status);
      if (verb === 'update' && before === status) return;
    }
    const sts = p.metadata?.labels?.[PILOT_STATEFULSET_LABEL];
    if (sts) this.o.onChange?.(ns, sts, name);
  }
}

function sameSpec(have: unknown, want: PilotSpec): boolean {
  const h = (have ?? {}) as { application?: unknown; options?: Record<string, unknown> };
  if (h.application !== want.application) return false;
  const a = h.options ?? {};
  const b = want.options ?? {};
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((x) => a[x] === b[x]);
}
