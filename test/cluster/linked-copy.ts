import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/**
 * A copy of a cached install (dest, if not there yet) that a pod's unprivileged
 * user can read, where the cache is out of its reach: hard links, or a plain
 * copy across file systems.
 */
export function linkedCopy(src: string, dest: string): void {
  if (fs.existsSync(dest)) return;
  const r = spawnSync('cp', ['-al', src, dest], { stdio: 'pipe' });
  if (r.status !== 0) {
    fs.rmSync(dest, { recursive: true, force: true });
    execFileSync('cp', ['-a', src, dest]);
  }
}
