import type { Command } from 'commander';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseFlags } from '../../lib/cli/flags.ts';

/** The app's directory (the one with package.json), whether this runs from the sources (cmd/commands) or the bundle (dist). */
function appRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
}
const CopyFlags = z.strictObject({ tini: z.string().min(1) });

/**
 * `sts-pilot copy-pilot DIR`: what an init container runs to put the pilot into an
 * application's pod (an emptyDir): Node as DIR/node, the app as DIR/app and tini
 * as DIR/tini. The image needs no shell for it; tini must be a static build, since
 * it runs in the application's image.
 */
export function registerCopyPilot(program: Command): void {
  program
    .command('copy-pilot')
    .argument('<dir>', 'where to copy (an emptyDir shared with the application container)')
    .description('copy node, the app and tini into DIR, for an application container to run "DIR/tini -- DIR/node DIR/app/dist/sts-pilot.mjs pilot ..."')
    .option('--tini <path>', 'the static tini to copy', '/usr/bin/tini-static')
    .action((dir: string, _opts: unknown, cmd: Command) => {
      const f = parseFlags(CopyFlags, cmd.opts());
      if (!existsSync(f.tini)) throw new Error(`--tini ${f.tini} does not exist`);
      mkdirSync(dir, { recursive: true });
      cpSync(process.execPath, join(dir, 'node'), { preserveTimestamps: true });
      cpSync(f.tini, join(dir, 'tini'), { preserveTimestamps: true });
      const app = appRoot();
      cpSync(app, join(dir, 'app'), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      console.log(`copied ${process.execPath} -> ${join(dir, 'node')}, ${f.tini} -> ${join(dir, 'tini')}, ${app} -> ${join(dir, 'app')}`);
    });
}
