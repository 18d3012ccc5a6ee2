import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GO_PILOT_MODULE = 'github.com/bpineau/statefulset-pilot';

export interface GoPilotCheck {
  module: string;
  /** Each command tried, in order, with what it printed. */
  steps: { command: string; exitCode: number; output: string }[];
  builds: boolean;
  /** One line: why there is no peer row. */
  verdict: string;
}

/** Recorded output names no registry: a URL's scheme and host become <proxy> (the machine's GOPROXY says which). */
export const withoutHosts = (text: string): string => text.replace(/\bhttps?:\/\/[^/\s]+/g, '<proxy>');

function go(args: string[], cwd: string): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'go',
      args,
      { cwd, timeout: 180_000, env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' }, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ exitCode: code, output: withoutHosts(`${stdout}${stderr}`.trim()) });
      },
    );
  });
}

/**
 * Can the Go statefulset-pilot be built from the Go module proxy? A throwaway
 * module asks the proxy for its versions, then (only if it has any) for the
 * module itself and builds its manager.
 */
export async function checkGoPilot(): Promise<GoPilotCheck> {
  const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-gopilot-'));
  const steps: GoPilotCheck['steps'] = [];
  try {
    writeFileSync(join(dir, 'go.mod'), 'module example.com/gopilotpeer\n\ngo 1.26\n');
    const list = await go(['list', '-m', '-versions', GO_PILOT_MODULE], dir);
    steps.push({ command: `go list -m -versions ${GO_PILOT_MODULE}`, ...list });
    if (list.exitCode !== 0) {
      return { module: GO_PILOT_MODULE, steps, builds: false, verdict: `the Go module proxy does not serve it: ${list.output.split('\n').join(' ')}` };
    }
    const get = await go(['get', `${GO_PILOT_MODULE}@latest`], dir);
    steps.push({ command: `go get ${GO_PILOT_MODULE}@latest`, ...get });
    if (get.exitCode !== 0) return { module: GO_PILOT_MODULE, steps, builds: false, verdict: `go get failed: ${get.output.split('\n').join(' ')}` };
    const build = await go(['build', '-o', join(dir, 'manager'), `${GO_PILOT_MODULE}/cmd/manager`], dir);
    steps.push({ command: `go build ${GO_PILOT_MODULE}/cmd/manager`, ...build });
    if (build.exitCode !== 0) return { module: GO_PILOT_MODULE, steps, builds: false, verdict: `go build failed: ${build.output.split('\n').slice(0, 5).join(' ')}` };
    return {
      module: GO_PILOT_MODULE,
      steps,
      builds: true,
      verdict: 'it builds; the bench has no runner for it yet (its flags and RBAC differ): wire it into bench/rollouts.ts to get a peer row',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
