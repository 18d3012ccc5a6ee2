// image/bundle.ts [OUT_DIR]: the one file the image runs, dist/sts-pilot.mjs:
// cmd/sts-pilot.ts and everything it imports, bundled by esbuild.
//
// Why: memory. Node strips the types of every .ts file with a WebAssembly
// compiler it loads for that (about 17 MiB), and @kubernetes/client-node is
// about 2,800 modules, each kept with its own source and module record. The
// bundle starts in 96 MiB instead of 136, in the controller and in every
// application pod's pilot alike (docs/decisions.md, "One bundled file").
// Identifiers are kept, so stack traces in logs still read; only whitespace and
// syntax are minified. @platformatic/kafka stays a package (it loads a .wasm
// file next to itself, and only Kafka hooks and pilots load it, on first use).
//
// image/bundle.ts --cli OUT_FILE: the CLI and kubectl plugin as one executable
// file for people (the release's kubectl-sts_pilot): the same bundle with a
// `#!/usr/bin/env node` line, a check for Node >= 24 that says so instead of a
// syntax error, and the program name `kubectl sts-pilot` when the file is called
// kubectl-sts_pilot (what bin/kubectl-sts_pilot sets for the sources). It needs
// nothing beside it; only a Kafka hook or pilot (run from the image) would need
// @platformatic/kafka.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = process.argv[2] === '--cli';
const outfile = cli
  ? resolve(process.argv[3] ?? join(root, 'dist', 'kubectl-sts_pilot'))
  : join(resolve(process.argv[2] ?? join(root, 'dist')), 'sts-pilot.mjs');
const requireShim = "import { createRequire as __stsPilotRequire } from 'node:module'; const require = __stsPilotRequire(import.meta.url);";
// The `#!/usr/bin/env node` line comes from cmd/sts-pilot.ts (esbuild keeps it first).
// Without a .mjs name Node 24 runs the file as an ES module by its syntax.
const cliBanner = [
  "if (Number(process.versions.node.split('.')[0]) < 24) { console.error(`sts-pilot: needs Node.js 24 or newer; this is ${process.version}`); process.exit(2); }",
  "if ((process.argv[1] ?? '').split(/[\\\\/]/).pop().startsWith('kubectl-')) process.env.STS_PILOT_PROGRAM ??= 'kubectl sts-pilot';",
  requireShim,
].join('\n');

const result = await build({
  entryPoints: [join(root, 'cmd', 'sts-pilot.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  legalComments: 'none',
  external: ['@platformatic/kafka'],
  // Some dependencies are CommonJS and call require(): give the ES module one.
  banner: { js: cli ? cliBanner : requireShim },
  logLevel: 'warning',
  metafile: true,
});
if (cli) chmodSync(outfile, 0o755);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`${outfile}: ${(bytes / 2 ** 20).toFixed(1)} MiB from ${Object.keys(result.metafile.inputs).length} modules`);
