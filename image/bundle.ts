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
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(process.argv[2] ?? join(root, 'dist'));
const outfile = join(outDir, 'sts-pilot.mjs');

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
  banner: { js: "import { createRequire as __stsPilotRequire } from 'node:module'; const require = __stsPilotRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`${outfile}: ${(bytes / 2 ** 20).toFixed(1)} MiB from ${Object.keys(result.metafile.inputs).length} modules`);
