import { ActionName, MAX_ACTIONS, type Pilot, type PilotActionRequest, type PilotActionStatus } from './schema.ts';

/**
 * The request channel from the controller to a pod's pilot, in pure
 * functions: the controller appends a request to the Pilot's spec.actions
 * (requestPatch), the pilot runs each request at most once and reports it in
 * status.actions (nextAction, adoptStatuses). Only the controller writes the
 * spec, only the pilot the status. The I/O is the manager's (controller side)
 * and the runner's (pilot side).
 */

/** Action name to the shell command the pilot runs for it. */
export type ActionCommands = Readonly<Record<string, string>>;

/**
 * What an application's pilot can be asked to do when no flag says otherwise.
 * Cassandra: a decommission runs on the node itself (JMX, local to the pod),
 * which the controller cannot reach; nodetool is on the image's PATH.
 */
export const DEFAULT_ACTION_COMMANDS: Readonly<Record<string, ActionCommands>> = {
  cassandra: { decommission: 'nodetool decommission' },
};

/** The commands of a pilot: its application's defaults, overridden or extended by `--action name=command` flags. */
export function actionCommands(app: string, flags: readonly string[]): { ok: true; commands: ActionCommands } | { ok: false; error: string } {
  const out: Record<string, string> = { ...(DEFAULT_ACTION_COMMANDS[app] ?? {}) };
  for (const f of flags) {
    const i = f.indexOf('=');
    const name = i < 0 ? f : f.slice(0, i);
    const command = i < 0 ? '' : f.slice(i + 1).trim();
    const parsed = ActionName.safeParse(name);
    if (!parsed.success) return { ok: false, error: `--action ${JSON.stringify(f)}: the action name ${parsed.error.issues[0]?.message ?? 'is invalid'}` };
    if (!command) return { ok: false, error: `--action ${JSON.stringify(f)}: give it as name=command, e.g. decommission='nodetool decommission'` };
    out[name] = command;
  }
  return { ok: true, commands: out };
}

export type ActionStep =
  | { kind: 'none'; why: string }
  | { kind: 'run'; request: PilotActionRequest; command: string }
  | { kind: 'refuse'; request: PilotActionRequest; message: string };

/**
 * What the pilot does next about its requests: one at a time, in the order
 * the controller wrote them. A request whose id the status lists (any state)
 * is done with: never run twice. An action without a command is refused,
 * never guessed at.
 */
export function nextAction(requests: readonly PilotActionRequest[] | undefined, statuses: readonly PilotActionStatus[], commands: ActionCommands): ActionStep {
  const running = statuses.find((s) => s.state === 'Running');
  if (running) return { kind: 'none', why: `${running.action} (${running.id}) is running` };
  const seen = new Set(statuses.map((s) => s.id));
  const request = requests?.find((r) => !seen.has(r.id));
  if (!request) return { kind: 'none', why: 'no new request' };
  const command = Object.hasOwn(commands, request.action) ? commands[request.action] : undefined;
  if (command === undefined) {
    const known = Object.keys(commands);
    return {
      kind: 'refuse',
      request,
      message: `this pilot has no command for the action ${request.action} (${known.length ? `it knows ${known.join(', ')}` : 'it was given none'}): not run`,
    };
  }
  return { kind: 'run', request, command };
}

/**
 * The statuses a pilot starts from, read back from its Pilot. One still
 * Running was cut short by the pilot's own restart (its command died with
 * the container): it becomes Failed and is not run again, so that a request
 * runs at most once; whoever asked decides whether to ask again, under a new id.
 */
export function adoptStatuses(previous: readonly PilotActionStatus[] | undefined, now: Date): PilotActionStatus[] {
  return (previous ?? []).map((s) =>
    s.state === 'Running'
      ? { ...s, state: 'Failed', endTime: now.toISOString(), message: 'interrupted: the pilot restarted while it ran; not run again (a new request, with a new id, would run it)' }
      : s,
  );
}

/** Add or replace the status of one request, keeping the newest MAX_ACTIONS. */
export function withStatus(statuses: readonly PilotActionStatus[], s: PilotActionStatus): PilotActionStatus[] {
  const out = statuses.filter((x) => x.id !== s.id);
  out.push(s);
  return out.slice(-MAX_ACTIONS);
}

/** The last lines of a command's output, within the status field's bound. */
export function outputTail(text: string, maxLines = 20, maxChars = 4000): string {
  const lines = text.replace(/\s+$/, '').split('\n').slice(-maxLines).join('\n');
  return lines.length > maxChars ? lines.slice(-maxChars) : lines;
}

/** A JSON patch operation, as the API server takes them. */
export type JsonPatchOp = { op: 'test' | 'add'; path: string; value: unknown };

/**
 * Append a request to a Pilot's spec.actions, guarded by the Pilot's uid (a
 * Pilot of an earlier pod of the same name never gets it). Appending leaves
 * the requests already there alone; the list is keyed by id, so the server
 * refuses a second request with the same id (our cache behind our own write).
 * Without a pilot to read it, a request is only a record: nothing runs it.
 */
export function requestPatch(pilot: Pilot, request: PilotActionRequest): JsonPatchOp[] {
  const guard: JsonPatchOp = { op: 'test', path: '/metadata/uid', value: pilot.metadata.uid };
  if (pilot.spec.actions !== undefined) return [guard, { op: 'add', path: '/spec/actions/-', value: request }];
  // The first request sets the whole list: only on the version read, so a list the cache did not show yet is never replaced.
  const version: JsonPatchOp[] = pilot.metadata.resourceVersion ? [{ op: 'test', path: '/metadata/resourceVersion', value: pilot.metadata.resourceVersion }] : [];
  return [guard, ...version, { op: 'add', path: '/spec/actions', value: [request] }];
}

/** The request of this id and what the pilot says of it, as a hook reads them. */
export function requestState(pilot: Pilot | undefined, id: string): { request?: PilotActionRequest; status?: PilotActionStatus } {
  return { request: pilot?.spec.actions?.find((r) => r.id === id), status: pilot?.status?.actions?.find((s) => s.id === id) };
}
