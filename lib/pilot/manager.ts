import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { describeError, statusCode } from '../errors.ts';
import { Informer } from '../kube/informer.ts';
import type { Logger } from '../log.ts';
import type { Metrics, PilotHeartbeat } from '../metrics.ts';
import { API_GROUP, API_VERSION, FIELD_MANAGER } from '../names.ts';
import type { PilotActions } from '../hook.ts';
import { requestPatch } from './actions.ts';
import { isFresh, type PilotReader } from './reader.ts';
import {
  MAX_ACTIONS,
  parsePilot,
  PILOT_API_VERSION,
  PILOT_KIND,
  PILOT_PLURAL,
  PILOT_STATEFULSET_LABEL,
  type Pilot,
  PilotActionRequest,
  PilotSpec,
  PilotStatus,
  podOwnerUid,
} from './schema.ts';
import { significant } from './status.ts';

export type RawPilot = KubernetesObject & { spec?: unknown; status?: unknown };

export interface PilotManagerOptions {
  kc: KubeConfig;
  log: Logger;
  /** Watch one namespace; all when undefined. */
  namespace?: string;
  /**
   * A Pilot appeared or went away, its status changed in something a hook may
   * decide on, or a heartbeat came after a silence (a stale Pilot turned
   * fresh). A plain heartbeat does not call it: with many pods that would
   * re-run held hooks every few seconds. Called synchronously from the watch:
   * queue work, do none here.
   */
  onChange?: (namespace: string, statefulSet: string, pilot: string) => void;
  metrics?: Pick<Metrics, 'apiErrors' | 'watchRestarts'> & Partial<Pick<Metrics, 'addPilotHeartbeatSource'>>;
  now?: () => number;
}

export interface EnsureResult {
  created: string[];
  /**
   * Pods whose name is taken by a Pilot another pod owns: one left by an
   * earlier pod of the same name. The garbage collector removes it with its
   * owner; the next reconcile (on the delete event) creates the pod's own.
   */
  stale: string[];
  failed: { pod: string; error: string }[];
}

/** A write of ours the cache does not show yet, or a failure not to retry yet. */
interface Pending {
  podUid: string;
  until: number;
  failures: number;
}

/** A heartbeat this long after the one before may turn a stale Pilot fresh: tell the controller. */
export const HEARTBEAT_GAP_MS = 30_000;

/** How long we trust our own create before the watch shows it. */
const CREATED_TTL_MS = 30_000;
const RETRY_BASE_MS = 2_000;
const RETRY_MAX_MS = 5 * 60_000;

const k = (ns: string, name: string): string => `${ns}/${name}`;

/**
 * The controller's side of Pilots: one per pod of a subscribed StatefulSet,
 * same name, owned by the pod so the garbage collector deletes it with the pod.
 * Reads come from an informer's cache; ensurePilots only creates what is
 * missing, so a reconcile where nothing changed makes no API call. It never
 * deletes a Pilot (the collector does), and changes its spec only to append a
 * request of a hook to spec.actions (requestAction); application and options
 * are set once, when the pod's Pilot is made (RBAC: create, get, list, watch,
 * patch).
 */
export class PilotManager {
  private readonly o: PilotManagerOptions;
  private readonly api: CustomObjectsApi;
  private readonly informer: Informer<RawPilot>;
  /** Per Pilot: the significant part of the status last seen, and its heartbeat. */
  private readonly lastStatus = new Map<string, { significant: string; heartbeat: number }>();
  private readonly pending = new Map<string, Pending>();
  private prunedAt = 0;
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
      // No listPage: the informer lists the path itself, as plain JSON (a Pilot has no typed model anyway).
      onChange: (p, verb) => this.onPilot(p, verb),
      onRestart: () => o.metrics?.watchRestarts.inc({ resource: 'pilots' }),
    });
    o.metrics?.addPilotHeartbeatSource?.(() => this.heartbeats());
  }

  /** The heartbeat of every cached Pilot that has one (sts_pilot_pilot_heartbeat_timestamp_seconds); read at scrape time. */
  *heartbeats(): Iterable<PilotHeartbeat> {
    for (const raw of this.informer.list()) {
      const ns = raw.metadata?.namespace ?? '';
      const sts = raw.metadata?.labels?.[PILOT_STATEFULSET_LABEL];
      const phase = (raw as { status?: { phase?: unknown } }).status?.phase;
      const t = (raw as { status?: { heartbeatTime?: unknown } }).status?.heartbeatTime;
      // A pilot that stopped on purpose (its pod is going) owes no heartbeat.
      if (!sts || typeof t !== 'string' || phase === 'Stopped') continue;
      const at = Date.parse(t);
      if (!Number.isNaN(at)) yield { namespace: ns, pilot: raw.metadata?.name ?? '', statefulSet: sts, at };
    }
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
      list: () => this.list(namespace),
      isFresh: (p, maxAgeMs) => isFresh(p, maxAgeMs, this.now()),
    };
  }

  /** The namespace's Pilots that parse, through get (which warns once about an unreadable one). */
  list(namespace: string): Pilot[] {
    return this.informer
      .list(namespace)
      .map((raw) => this.get(namespace, raw.metadata?.name ?? ''))
      .filter((p): p is Pilot => p !== undefined);
  }

  /** What hooks of one namespace may ask of its pilots. */
  actions(namespace: string): PilotActions {
    return { request: (pod, r) => this.requestAction(namespace, pod, r) };
  }

  /**
   * Append a request to the spec.actions of a pod's Pilot, as it is in the
   * cache: one JSON patch guarded by the Pilot's uid. A request of the same id
   * already there (in the cache, or on the server when the cache is behind
   * our own write) is 'already': asking twice is harmless.
   */
  async requestAction(namespace: string, pod: string, r: { id: string; action: string; reason?: string }): Promise<'requested' | 'already'> {
    const pilot = this.get(namespace, pod);
    if (!pilot) throw new Error(`pod ${pod} has no Pilot (yet) to take the request`);
    if (pilot.spec.actions?.some((a) => a.id === r.id)) return 'already';
    if ((pilot.spec.actions?.length ?? 0) >= MAX_ACTIONS) throw new Error(`the Pilot of ${pod} holds ${MAX_ACTIONS} requests already, the most it takes`);
    const request = PilotActionRequest.parse({ ...r, requestTime: new Date(this.now()).toISOString() });
    let current = pilot;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.patchNamespacedCustomObject(
          { group: API_GROUP, version: API_VERSION, namespace, plural: PILOT_PLURAL, name: pod, body: requestPatch(current, request), fieldManager: FIELD_MANAGER },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        );
        break;
      } catch (err) {
        const code = statusCode(err);
        // The list is keyed by id: the server refuses a second request of this id.
        if (code === 422 && /duplicate/i.test(describeError(err))) return 'already';
        // A first request is guarded by the version read, and the pilot's own status writes move that version
        // (every heartbeat): the cache was behind. Read the Pilot afresh, once, and write on what the server has.
        if (code === 422 && attempt === 1 && current.spec.actions === undefined) {
          const fresh = await this.fetch(namespace, pod);
          // Another object of the name (the pod was replaced) is not the one the caller decided on.
          if (fresh.metadata.uid !== pilot.metadata.uid) throw new Error(`the Pilot of ${pod} was replaced (uid ${fresh.metadata.uid}, not ${pilot.metadata.uid}): the request ${r.id} is not written`);
          if (fresh.spec.actions?.some((a) => a.id === r.id)) return 'already';
          current = fresh;
          continue;
        }
        this.o.metrics?.apiErrors.inc({ operation: 'request_pilot_action', code: String(code ?? 'none') });
        throw new Error(`could not write the request ${r.id} into the Pilot of ${pod}: ${describeError(err, 300)}`);
      }
    }
    this.o.log.info({ pilot: k(namespace, pod), id: request.id, action: request.action }, 'requested an action of the pilot');
    return 'requested';
  }

  /** The Pilot as the server has it now (a read past the cache), or an error that says why not. */
  private async fetch(namespace: string, pod: string): Promise<Pilot> {
    let raw: unknown;
    try {
      raw = await this.api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: PILOT_PLURAL, name: pod });
    } catch (err) {
      this.o.metrics?.apiErrors.inc({ operation: 'get_pilot', code: String(statusCode(err) ?? 'none') });
      throw new Error(`could not read the Pilot of ${pod} again: ${describeError(err, 300)}`);
    }
    const parsed = parsePilot(raw);
    if ('error' in parsed) throw new Error(`the Pilot of ${pod} is unreadable: ${parsed.error.slice(0, 300)}`);
    return parsed.pilot;
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
   * Make sure every live pod has its Pilot, created with this spec. Pods being
   * deleted get none (the garbage collector is about to take it). Never
   * throws: a failure is reported, logged, and retried on a later call after a
   * backoff.
   */
  async ensurePilots(sts: V1StatefulSet, pods: readonly V1Pod[], application: string, options?: Record<string, string>): Promise<EnsureResult> {
    const result: EnsureResult = { created: [], stale: [], failed: [] };
    const ns = sts.metadata?.namespace;
    const stsName = sts.metadata?.name;
    if (!ns || !stsName) return result;
    const parsed = PilotSpec.safeParse(options && Object.keys(options).length > 0 ? { application, options } : { application });
    if (!parsed.success) {
      const error = `no valid Pilot spec: ${z.prettifyError(parsed.error).replace(/\s+/g, ' ')}`;
      for (const pod of pods) result.failed.push({ pod: pod.metadata?.name ?? '', error });
      return result;
    }
    const spec = parsed.data;
    const now = this.now();
    // Entries leave when their Pilot shows in the cache (onPilot); the rest are pruned
    // at most once a minute: scanning them on every call was O(pods) per StatefulSet,
    // 30,000 entries per call while 10,000 StatefulSets were being created.
    if (this.pending.size > 10_000 && now - this.prunedAt > 60_000) {
      this.prunedAt = now;
      for (const [id, p] of this.pending) if (p.until < now - RETRY_MAX_MS) this.pending.delete(id);
    }
    for (const pod of pods) {
      const name = pod.metadata?.name;
      const uid = pod.metadata?.uid;
      if (!name || !uid || pod.metadata?.deletionTimestamp) continue;
      const id = k(ns, name);
      const cached = this.informer.get(name, ns);
      const pend = this.pending.get(id);
      if (cached) {
        if (pend) this.pending.delete(id);
        if (podOwnerUid(cached) !== uid) result.stale.push(name);
        continue;
      }
      // Our create is on its way to the cache, or the last attempt failed recently.
      if (pend?.podUid === uid && now < pend.until) continue;
      // Pending from before the request: the watch can show the new Pilot before the
      // create's own answer arrives (a loaded machine), and onPilot must find an entry
      // to clear then. Set after the answer, it would outlive its Pilot: a Pilot deleted
      // right after would not be made again for CREATED_TTL_MS.
      const mine: Pending = { podUid: uid, until: now + CREATED_TTL_MS, failures: 0 };
      this.pending.set(id, mine);
      try {
        const did = await this.create(ns, stsName, pod, spec);
        result[did].push(name);
        if (did === 'created') {
          // Still ours and not yet seen: trust the create for CREATED_TTL_MS from its answer.
          if (this.pending.get(id) === mine) mine.until = this.now() + CREATED_TTL_MS;
        } else {
          // Not in our cache, so no delete event will tell us when it goes: ask again after a backoff.
          const failures = (pend?.podUid === uid ? pend.failures : 0) + 1;
          this.pending.set(id, { podUid: uid, until: this.now() + Math.min(RETRY_BASE_MS * 2 ** (failures - 1), RETRY_MAX_MS), failures });
        }
      } catch (err) {
        const failures = (pend?.podUid === uid ? pend.failures : 0) + 1;
        const delay = Math.min(RETRY_BASE_MS * 2 ** (failures - 1), RETRY_MAX_MS);
        this.pending.set(id, { podUid: uid, until: this.now() + delay, failures });
        const code = statusCode(err);
        this.o.metrics?.apiErrors.inc({ operation: 'create_pilot', code: String(code ?? 'none') });
        const error = describeError(err);
        result.failed.push({ pod: name, error });
        this.o.log.warn({ pilot: id, err: error, retryInMs: delay }, 'could not create the Pilot of a pod');
      }
    }
    for (const name of result.created) this.o.log.info({ pilot: k(ns, name) }, 'created Pilot');
    return result;
  }

  /** Create a pod's Pilot; 'stale' when its name is taken by a Pilot another pod owns. */
  private async create(ns: string, stsName: string, pod: V1Pod, spec: PilotSpec): Promise<'created' | 'stale'> {
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? '';
    try {
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
            ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid, controller: true, blockOwnerDeletion: false }],
          },
          spec,
        },
      });
      return 'created';
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    // The name is taken: the cache is behind our own create, or the Pilot is not
    // one we watch (no label) or belongs to an earlier pod of this name.
    const current = (await this.api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: PILOT_PLURAL, name })) as RawPilot;
    if (podOwnerUid(current) === uid) return 'created';
    this.o.log.info({ pilot: k(ns, name), owner: podOwnerUid(current) ?? null }, 'a Pilot of this name belongs to another pod: waiting for the garbage collector');
    return 'stale';
  }

  private onPilot(p: RawPilot, verb: 'add' | 'update' | 'delete'): void {
    const ns = p.metadata?.namespace ?? '';
    const name = p.metadata?.name ?? '';
    const id = k(ns, name);
    if (verb === 'delete') this.lastStatus.delete(id);
    else {
      // Our create (or anyone's) reached the cache: nothing is pending for this name.
      this.pending.delete(id);
      const parsed = PilotStatus.safeParse(p.status);
      const now = parsed.success
        ? { significant: significant(parsed.data), heartbeat: Date.parse(parsed.data.heartbeatTime) }
        : { significant: JSON.stringify(p.status ?? null), heartbeat: 0 };
      const before = this.lastStatus.get(id);
      this.lastStatus.set(id, now);
      if (verb === 'update' && before && before.significant === now.significant && now.heartbeat - before.heartbeat <= HEARTBEAT_GAP_MS) return;
    }
    const sts = p.metadata?.labels?.[PILOT_STATEFULSET_LABEL];
    if (sts) this.o.onChange?.(ns, sts, name);
  }
}
