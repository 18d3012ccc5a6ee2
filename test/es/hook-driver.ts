// Calls the elasticsearch hook as the controller calls it, for tests against a
// real cluster: a StatefulSet object of the given name and size, pods named
// like their nodes (<sts>-<ordinal>), a real HookContext, and a loop that
// retries a held step as the controller's backoff would (only faster).

import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { elasticsearchHook } from '../../hooks/elasticsearch/index.ts';
import type { Options } from '../../hooks/elasticsearch/options.ts';
import { type HookContext, HookNotReady, parseHookOptions, type RemovalContext, type RolloutHook, type SecretReader } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

export const NS = 'db';
const log = createLogger({ level: process.env.LOG_LEVEL ?? 'silent', name: 'es-hook-driver' });

export interface StsSpec {
  name: string;
  replicas: number;
  /** option annotations without their prefix */
  options: Record<string, string>;
  /** the template's image; its tag is the version an upgrade goes to */
  image?: string;
  secrets?: Record<string, Record<string, string>>;
}

const uids = new Map<string, string>();
const uidOf = (name: string): string => uids.get(name) ?? (uids.set(name, randomUUID()).get(name) as string);

export function annotationsOf(s: StsSpec): Record<string, string> {
  return Object.fromEntries(Object.entries(s.options).map(([k, v]) => [`elasticsearch.sts-pilot.io/${k}`, v]));
}

function statefulSet(s: StsSpec): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: s.name, namespace: NS, uid: uidOf(`sts/${s.name}`), labels: { 'sts-pilot.io/hook': 'elasticsearch' }, annotations: annotationsOf(s) },
    spec: {
      replicas: s.replicas,
      serviceName: s.name,
      selector: { matchLabels: { app: s.name } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: s.replicas } },
      template: { metadata: { labels: { app: s.name } }, spec: { containers: [{ name: 'es', image: s.image ?? 'example/search:latest' }] } },
    },
  };
}

function pod(sts: string, name: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, uid: uidOf(name), labels: { app: sts, 'statefulset.kubernetes.io/pod-name': name } },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

export interface Outcome {
  approved: boolean;
  reason?: string;
}

/** The context the controller gives a hook call: the StatefulSet, its parsed options, Secrets from the spec. */
function contextOf(s: StsSpec, hook: RolloutHook): Omit<HookContext<Options>, 'nextReady'> {
  const parsed = parseHookOptions(hook, annotationsOf(s));
  if (!parsed.ok) throw new Error(parsed.error);
  const secrets: SecretReader = async (name) => {
    const data = s.secrets?.[name];
    if (!data) throw new Error(`secrets "${name}" not found`);
    return data;
  };
  return { statefulSet: statefulSet(s), options: parsed.options as Options, signal: AbortSignal.timeout(60_000), log, secrets, egress: loopbackEgress, pilots: staticPilotReader([]) };
}

/** A hook's answer: resolved is approved, HookNotReady is a hold with its reason; anything else is a bug of the test. */
async function outcome(call: () => Promise<void> | undefined): Promise<Outcome> {
  try {
    await call();
    return { approved: true };
  } catch (err) {
    if (!(err instanceof HookNotReady)) throw err;
    return { approved: false, reason: err.message };
  }
}

export async function callHook(s: StsSpec, prev: string | null, next: string | null, hook: RolloutHook = elasticsearchHook): Promise<Outcome> {
  const ctx: HookContext<Options> = { ...contextOf(s, hook), nextReady: next === null ? null : true };
  return outcome(() => (hook as RolloutHook<Options>).podUpdateTransition(prev ? pod(s.name, prev) : null, next ? pod(s.name, next) : null, ctx));
}

/** podRemoval ('removal') or podRemoved ('removed' | 'withdrawn') of `pod`, as the controller calls them on a scale-down. */
export async function callRemoval(s: StsSpec, podName: string, call: 'removal' | 'removed' | 'withdrawn', hook: RolloutHook = elasticsearchHook): Promise<Outcome> {
  const ctx: RemovalContext<Options> = { ...contextOf(s, hook), podReady: call !== 'removed', volumes: 'deleted', requestedReplicas: s.replicas - (call === 'removal' ? 1 : 0) };
  const h = hook as RolloutHook<Options>;
  return outcome(() => (call === 'removal' ? h.podRemoval?.(pod(s.name, podName), ctx) : h.podRemoved?.(pod(s.name, podName), call, ctx)));
}

/** Calls every 250 ms until the removal call is approved; every distinct hold reason kept. */
export function untilRemovalApproved(s: StsSpec, podName: string, call: 'removal' | 'removed' | 'withdrawn', timeoutMs = 300_000, say: (l: string) => void = () => {}): Promise<Run> {
  return until(() => callRemoval(s, podName, call), `${s.name} ${call} ${podName}`, timeoutMs, say);
}

export interface Run {
  ms: number;
  calls: number;
  reasons: string[];
}

/** Calls every 250 ms until approved; every distinct hold reason kept. */
export function untilApproved(s: StsSpec, prev: string | null, next: string | null, timeoutMs = 300_000, say: (l: string) => void = () => {}): Promise<Run> {
  return until(() => callHook(s, prev, next), `${s.name} (${prev ?? 'null'}, ${next ?? 'null'})`, timeoutMs, say);
}

/** Asks again every 250 ms, as the controller's backoff would (only faster), until approved. */
async function until(ask: () => Promise<Outcome>, what: string, timeoutMs: number, say: (l: string) => void): Promise<Run> {
  const t0 = performance.now();
  const reasons: string[] = [];
  for (let calls = 1; ; calls++) {
    const r = await ask();
    if (r.approved) return { ms: performance.now() - t0, calls, reasons };
    if (reasons.at(-1) !== r.reason) {
      reasons.push(r.reason as string);
      say(`${what} holds: ${r.reason}`);
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what} not approved in ${timeoutMs / 1000} s; reasons: ${reasons.join(' | ')}`);
    await sleep(250);
  }
}

/** Calls until the hold reason matches (or it approves: then it throws). */
export async function untilHeldWith(s: StsSpec, prev: string | null, next: string | null, re: RegExp, timeoutMs = 120_000): Promise<string> {
  const t0 = performance.now();
  let last = '';
  for (;;) {
    const r = await callHook(s, prev, next);
    if (r.approved) throw new Error(`${s.name} (${prev}, ${next}) approved; expected a hold matching ${re}; last reason: ${last}`);
    last = r.reason as string;
    if (re.test(last)) return last;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${s.name} (${prev}, ${next}): no hold matching ${re} in ${timeoutMs / 1000} s; last: ${last}`);
    await sleep(500);
  }
}

/**
 * Starts a stopped node. The harness gives a node 180 s to rejoin; on a loaded
 * machine a node can take longer. A node still running past that is not a
 * failure here: the hook's own rejoin check is what the tests wait on.
 */
export async function startNode(node: { start(): Promise<void>; running: boolean; name: string }, say: (l: string) => void = () => {}): Promise<void> {
  try {
    await node.start();
  } catch (err) {
    if (!node.running) throw err;
    say(`${node.name} is slow to rejoin (${String(err).split('\n')[0]}); waiting on the hook`);
  }
}
