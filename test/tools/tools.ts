import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The tools the tests use besides the control plane, built or fetched once by the
// project's own scripts and cached under $STS_PILOT_CACHE (test/tools/*.sh).

const here = dirname(fileURLToPath(import.meta.url));

async function script(name: string, arg: string, log: (line: string) => void): Promise<string> {
  const child = spawn('bash', [join(here, name), arg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach(log));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`test/tools/${name} ${arg} failed with exit code ${code}; its output is above`);
  const path = out.trim().split('\n').at(-1) ?? '';
  if (!existsSync(path)) throw new Error(`test/tools/${name} ${arg} printed ${JSON.stringify(path)}, which does not exist`);
  return path;
}

/** Build (once, cached) or find a Go tool: test/tools/go-tool.sh helm|promtool|prometheus|gitops-eval. */
export const goTool = (tool: 'helm' | 'promtool' | 'prometheus' | 'gitops-eval', log: (line: string) => void = () => {}): Promise<string> => script('go-tool.sh', tool, log);

/** A Debian package's files, unpacked (not installed): test/tools/deb-tool.sh. */
export const debTool = (pkg: string, log: (line: string) => void = () => {}): Promise<string> => script('deb-tool.sh', pkg, log);

/** tini's static build, from Debian's tini package. */
export const tiniStatic = async (log?: (line: string) => void): Promise<string> => join(await debTool('tini', log), 'usr', 'bin', 'tini-static');
