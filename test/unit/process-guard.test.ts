import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

// In a child process of its own: the handlers are process-wide.
const guard = fileURLToPath(new URL('../../lib/process-guard.ts', import.meta.url));
const log = fileURLToPath(new URL('../../lib/log.ts', import.meta.url));

function run(body: string): { status: number | null; lines: Record<string, unknown>[]; stdout: string } {
  const script = `
    import { guardProcess } from ${JSON.stringify(guard)};
    import { createLogger } from ${JSON.stringify(log)};
    let counted = 0;
    guardProcess(createLogger({ level: 'info' }), () => counted++);
    ${body}
  `;
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stdout: r.stdout };
}

describe('process guard: a stray rejection is logged and survived, an uncaught exception is logged before the exit', () => {
  it('a rejected promise nobody awaits: logged with its reason and stack, counted, and the process goes on', () => {
    const r = run(`
      void Promise.reject(new Error('socket went away'));
      setTimeout(() => { console.log(JSON.stringify({ msg: 'still here', counted })); process.exit(0); }, 50);
    `);
    expect(r.status, r.stdout).to.equal(0);
    const logged = r.lines.find((l) => String(l.msg).startsWith('a promise was rejected'));
    expect(logged?.err).to.equal('socket went away');
    expect(String(logged?.stack)).to.include('Error: socket went away');
    expect(r.lines.at(-1)).to.deep.equal({ msg: 'still here', counted: 1 });
  });

  it('a thrown exception nobody catches: a fatal line with the reason, then exit 70', () => {
    const r = run(`setTimeout(() => { throw new TypeError('cannot read x of undefined'); }, 10);`);
    expect(r.status).to.equal(70);
    const fatal = r.lines.find((l) => l.msg === 'uncaught exception; exiting');
    expect(fatal?.level).to.equal(60);
    expect(fatal?.err).to.equal('cannot read x of undefined');
  });
});
