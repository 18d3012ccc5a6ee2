import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { HttpHookRequest, httpHookJsonSchema } from '../../hooks/http/schema.ts';

const root = new URL('../../', import.meta.url).pathname;

describe('http hook: the published request schema', () => {
  it('docs/http-hook.schema.json is the schema the hook builds its requests with', () => {
    const committed = JSON.parse(readFileSync(join(root, 'docs/http-hook.schema.json'), 'utf8')) as unknown;
    expect(committed, 'run node test/tools/http-hook-schema.ts to write it again').to.deep.equal(httpHookJsonSchema());
  });

  it('accepts both kinds and fields added later, and refuses another apiVersion, kind or call', () => {
    const sts = { metadata: { name: 'db', namespace: 'prod' }, spec: { replicas: 3 } };
    expect(HttpHookRequest.safeParse({ apiVersion: 'sts-pilot.io/v1alpha1', kind: 'PodUpdateTransition', statefulSet: sts, prev: null, next: { metadata: { name: 'db-2' } }, nextReady: true, later: 1 }).success).to.equal(true);
    const removal = { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'PodRemoval', call: 'removal', statefulSet: sts, pod: { metadata: { name: 'db-2' } }, podReady: true, volumes: 'kept', requestedReplicas: 2 };
    expect(HttpHookRequest.safeParse(removal).success).to.equal(true);
    expect(HttpHookRequest.safeParse({ ...removal, apiVersion: 'sts-pilot.io/v1' }).success).to.equal(false);
    expect(HttpHookRequest.safeParse({ ...removal, kind: 'PodDelete' }).success).to.equal(false);
    expect(HttpHookRequest.safeParse({ ...removal, call: 'gone' }).success).to.equal(false);
  });
});

/** docs/examples/http-hook/server.mjs, the example hook server of docs/hooks-http.md, as a process. */
describe('http hook: the example server answers as documented', function () {
  this.timeout(20_000);
  let child: ChildProcess;
  let dir: string;
  let url: string;
  const sts = { metadata: { name: 'db', namespace: 'prod' } };
  const ask = async (body: unknown): Promise<[number, string]> => {
    const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return [r.status, await r.text()];
  };
  const step = { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'PodUpdateTransition', statefulSet: sts, prev: null, next: { metadata: { name: 'db-2' } }, nextReady: true };
  const removal = (call: string, pod: string) => ({ apiVersion: 'sts-pilot.io/v1alpha1', kind: 'PodRemoval', call, statefulSet: sts, pod: { metadata: { name: pod } }, podReady: true, volumes: 'kept', requestedReplicas: 1 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'http-hook-example-'));
    child = spawn(process.execPath, [join(root, 'docs/examples/http-hook/server.mjs')], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HOLD_FILE: join(dir, 'hold'), DRAINED_FILE: join(dir, 'drained') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    url = `http://127.0.0.1:${(JSON.parse(first.toString().split('\n')[0]!) as { listening: number }).listening}/`;
  });
  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('approves a step unless the hold file exists, whose first line is the reason', async () => {
    expect(await ask(step)).to.deep.equal([204, '']);
    writeFileSync(join(dir, 'hold'), 'change freeze until Monday\n');
    expect(await ask(step)).to.deep.equal([409, 'change freeze until Monday']);
    rmSync(join(dir, 'hold'));
    expect((await ask({ ...step, next: null }))[0]).to.equal(204);
  });

  it('approves a removal only of a drained pod, and acknowledges removed and withdrawn', async () => {
    expect(await ask(removal('removal', 'db-2'))).to.deep.equal([409, 'db-2 is not drained yet']);
    writeFileSync(join(dir, 'drained'), 'db-2\n');
    expect((await ask(removal('removal', 'db-2')))[0]).to.equal(204);
    expect((await ask(removal('removal', 'db-1')))[0]).to.equal(409);
    expect((await ask(removal('removed', 'db-2')))[0]).to.equal(204);
    expect((await ask(removal('withdrawn', 'db-1')))[0]).to.equal(204);
  });

  it('holds on what it does not understand: another apiVersion, an unknown kind, not JSON', async () => {
    expect(await ask({ ...step, apiVersion: 'sts-pilot.io/v2' })).to.deep.equal([400, 'unknown apiVersion sts-pilot.io/v2']);
    expect(await ask({ ...step, kind: 'PodRestart' })).to.deep.equal([400, 'unknown kind PodRestart']);
    const r = await fetch(url, { method: 'POST', body: '{' });
    expect(r.status).to.equal(400);
  });
});
