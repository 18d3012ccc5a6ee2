import { expect } from 'chai';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../cluster/controlplane.ts';
import { childPids } from '../../lib/pilot/zombies.ts';
import { createPilot, createPod, readPilotStatus } from '../pilot/harness.ts';
import { installPilotCrd, root } from '../pilot/helpers.ts';
import {
  type Cluster,
  cluster,
  createAndSettle,
  namespace,
  readSts,
  RecordingHook,
  rolloutFinished,
  setImage,
  statefulSet,
  stopCluster,
  waitUntil,
} from '../integration/harness.ts';

const exec = promisify(execFile);
const imageDir = process.env.STS_PILOT_IMAGE_DIR ?? join(root, 'dist', 'image');
const runner = join(root, 'test', 'image', 'run-in-root.sh');

interface RuntimeConfig {
  process: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number } };
}

/** An ELF64 executable with a PT_INTERP program header: dynamically linked. */
function hasInterpreter(elf: Buffer): boolean {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return true;
  return false;
}

/** Every file under `dir`, relative to it, sorted. */
function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name), base) : [relative(base, join(dir, e.name))]))
    .sort();
}

/** The final stage of the Dockerfile: its COPY lines and what it sets. */
function dockerfile(): { copies: { from?: string; src: string; dest: string }[]; workdir: string; user: string; entrypoint: string[]; cmd: string[]; env: string[] } {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const stage = text.slice(text.lastIndexOf('\nFROM '));
  const lines = stage.split('\n').filter((l) => /^[A-Z]+ /.test(l));
  const arg = (kw: string): string => (lines.find((l) => l.startsWith(`${kw} `)) ?? '').slice(kw.length + 1).trim();
  const workdir = arg('WORKDIR');
  const copies = lines
    .filter((l) => l.startsWith('COPY '))
    .map((l) => {
      const parts = l.split(/\s+/).slice(1);
      const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined;
      const [src = '', dest = ''] = parts;
      return { from, src, dest: dest.startsWith('/') ? dest : join(workdir, dest) };
    });
  return {
    copies,
    workdir,
    user: arg('USER'),
    entrypoint: JSON.parse(arg('ENTRYPOINT')) as string[],
    cmd: JSON.parse(arg('CMD')) as string[],
    env: lines.filter((l) => l.startsWith('ENV ')).map((l) => l.slice(4).trim()),
  };
}

/**
 * The image built by image/build.sh (run it first: `npm run image`), unpacked and
 * run the way a container runtime would: its own entrypoint, as its user (1000),
 * PID 1 of a PID namespace, the root file system read-only.
 */
describe('the container image (image/build.sh), unpacked and run without a container engine', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let bundle: string;
  let rootfs: string;
  let config: RuntimeConfig;
  let hostDir: string;
  const running: ChildProcess[] = [];

  before(async function () {
    this.timeout(80 * 60_000);
    const build = join(imageDir, 'build.json');
    if (!existsSync(build)) throw new Error(`no image in ${imageDir}: build it first with \`npm run image\` (image/build.sh)`);
    const info = JSON.parse(readFileSync(build, 'utf8')) as { tag: string; digest: string; compressedBytes: number; unpackedBytes: number; seconds: number };
    console.log(`      image ${info.tag} ${info.digest}: ${(info.compressedBytes / 2 ** 20).toFixed(1)} MiB compressed, ${(info.unpackedBytes / 2 ** 20).toFixed(1)} MiB unpacked, built in ${info.seconds}s`);
    const tag = info.tag.split(':')[1] ?? '';
    const tmp = mkdtempSync(join(tmpdir(), 'sts-pilot-image-'));
    bundle = join(tmp, 'bundle');
    await exec('umoci', ['unpack', '--image', `${join(imageDir, 'oci')}:${tag}`, bundle]);
    rootfs = join(bundle, 'rootfs');
    config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
    hostDir = join(tmp, 'host');
    rmSync(hostDir, { recursive: true, force: true });
    mkdirSync(hostDir);
    chmodSync(hostDir, 0o777); // the image's user writes there (copy-pilot)
    chmodSync(tmp, 0o755);
    c = await cluster();
    await installPilotCrd(c);
  });

  after(async () => {
    for (const p of running) p.kill('SIGKILL');
    if (bundle) rmSync(join(bundle, '..'), { recursive: true, force: true });
    await stopCluster();
  });

  /** Run in the image: the image's entrypoint with `args` (as `docker run IMAGE args`), its env, its user. */
  function start(args: string[], entrypoint?: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
    const cmd = entrypoint ?? config.process.args.slice(0, config.process.args.length - 1); // the image's CMD is the last
    const { uid, gid } = config.process.user;
    const env = Object.fromEntries(config.process.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const child = spawn(runner, [rootfs, hostDir, `${uid}:${gid}`, ...cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, out: () => out, exited };
  }

  /** PID 1 of the container (tini), as the host sees it: unshare forks it. */
  const pid1 = (child: ChildProcess): number => {
    const [sh] = childPids(child.pid as number);
    return sh as number;
  };

  const withKubeconfig = (path: string): string => {
    copyFileSync(path, join(hostDir, 'kubeconfig'));
    chmodSync(join(hostDir, 'kubeconfig'), 0o644);
    return '/tmp/host/kubeconfig';
  };

  it('has the Dockerfile\'s layout: what it copies under /app, Node at /usr/local/bin/node, the same entrypoint, command, user and env', async () => {
    const d = dockerfile();
    expect(config.process.args).to.deep.equal([...d.entrypoint, ...d.cmd]);
    expect(`${config.process.user.uid}:${config.process.user.gid}`).to.equal(d.user);
    expect(config.process.cwd).to.equal(d.workdir);
    for (const e of d.env) expect(config.process.env).to.include(e);
    for (const copy of d.copies) {
      const inImage = join(rootfs, copy.dest);
      if (copy.from === 'build') {
        // The bundle the image runs: the same bytes as image/bundle.ts makes from this checkout.
        const built = mkdtempSync(join(tmpdir(), 'sts-pilot-bundle-'));
        try {
          await exec(process.execPath, [join(root, 'image', 'bundle.ts'), built]);
          expect(files(inImage), copy.dest).to.deep.equal(files(built));
          for (const f of files(built)) expect(readFileSync(join(inImage, f), 'utf8') === readFileSync(join(built, f), 'utf8'), `${copy.dest}/${f} is the bundle of this checkout`).to.equal(true);
        } finally {
          rmSync(built, { recursive: true, force: true });
        }
        continue;
      }
      if (copy.from) {
        // node_modules of `npm ci --omit=dev`: every production package of the lock file, no dev one.
        // (Optional packages for another platform are left out by npm, as in the Dockerfile's linux/amd64 glibc stage.)
        const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
          packages: Record<string, { dev?: boolean; optional?: boolean; os?: string[]; cpu?: string[]; libc?: string[] }>;
        };
        const here = (v: { os?: string[]; cpu?: string[]; libc?: string[] }): boolean =>
          (!v.os || v.os.includes('linux')) && (!v.cpu || v.cpu.includes('x64')) && (!v.libc || v.libc.includes('glibc'));
        const want = Object.entries(lock.packages)
          .filter(([p, v]) => p.startsWith('node_modules/') && !v.dev && (!v.optional || here(v)))
          .map(([p]) => p.slice('node_modules/'.length))
          .sort();
        const have = Object.keys((JSON.parse(readFileSync(join(inImage, '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }).packages)
          .map((p) => p.slice('node_modules/'.length))
          .sort();
        expect(have, copy.dest).to.deep.equal(want);
        for (const p of want) expect(existsSync(join(inImage, p, 'package.json')), `${copy.dest}/${p}`).to.equal(true);
        continue;
      }
      const src = join(root, copy.src);
      if (statSync(src).isDirectory()) expect(files(inImage), copy.dest).to.deep.equal(files(src));
      else expect(readFileSync(copy.dest.endsWith('/') ? join(inImage, copy.src) : inImage, 'utf8'), copy.dest).to.equal(readFileSync(src, 'utf8'));
    }
    const node = (JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> }).packages['node_modules/node']?.version;
    expect((await exec(join(rootfs, 'usr', 'local', 'bin', 'node'), ['--version'])).stdout.trim()).to.equal(`v${node}`);
    expect(existsSync(join(rootfs, 'usr', 'bin', 'tini-static'))).to.equal(true);
    expect(existsSync(join(rootfs, 'bin', 'sh')), 'no shell in the image').to.equal(false);
  });

  it('runs as the image\'s user, not root, on a read-only root', async () => {
    const r = start(['-e', "const fs = require('fs'); let w; try { fs.writeFileSync('/app/x', ''); w = 'written' } catch (e) { w = e.code } console.log(process.getuid(), process.getgid(), w)"], ['/usr/local/bin/node']);
    expect(await r.exited, r.out()).to.equal(0);
    expect(r.out().trim().split('\n').at(-1)).to.equal('1000 1000 EROFS');
  });

  it('--help and --version through its entrypoint (tini, node, sts-pilot)', async () => {
    const help = start(['--help']);
    expect(await help.exited, help.out()).to.equal(0);
    expect(help.out()).to.match(/^Usage: sts-pilot \[options\] \[command\]/);
    const version = start(['--version']);
    expect(await version.exited).to.equal(0);
    expect(version.out().trim()).to.equal(`sts-pilot ${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version}`);
    // The one package the bundle leaves out (image/bundle.ts) resolves from where the bundle is, as a Kafka hook or pilot loads it.
    const resolveFromBundle = "import { createRequire } from 'node:module'; const m = await import(createRequire('/app/dist/sts-pilot.mjs').resolve('@platformatic/kafka')); console.log(typeof m.Connection)";
    const kafka = start(['--input-type=module', '-e', resolveFromBundle], ['/usr/local/bin/node']);
    expect(await kafka.exited, kafka.out()).to.equal(0);
    expect(kafka.out().trim()).to.equal('function');
  });

  it('copy-pilot: puts node, the app and a static tini where an application container can run them (the init container of an application pod)', async () => {
    const r = start(['copy-pilot', '/tmp/host/pilot']);
    expect(await r.exited, r.out()).to.equal(0);
    const out = join(hostDir, 'pilot');
    // Run from the copy, outside the image, as the application container would.
    const v = await exec(join(out, 'tini'), ['--', join(out, 'node'), join(out, 'app', 'dist', 'sts-pilot.mjs'), '--version']);
    expect(v.stdout.trim()).to.match(/^sts-pilot \d+\.\d+\.\d+$/);
    // A command line written for the sources still works.
    const fromSources = await exec(join(out, 'tini'), ['--', join(out, 'node'), '--disable-warning=ExperimentalWarning', join(out, 'app', 'cmd', 'sts-pilot.ts'), '--version']);
    expect(fromSources.stdout.trim()).to.equal(v.stdout.trim());
    // Static: no program interpreter (it runs in any application image, whatever its libc).
    expect(hasInterpreter(readFileSync(join(out, 'tini'))), 'tini has a program interpreter (PT_INTERP)').to.equal(false);
    expect(hasInterpreter(readFileSync(join(out, 'node'))), 'node is dynamic (a control for the check above)').to.equal(true);
  });

  it('controller: runs a rollout on the test control plane, and stops on SIGTERM to PID 1', async () => {
    const ns = await namespace(c, 'image');
    const port = await freePort();
    const kc = withKubeconfig(c.controllerKubeconfigPath);
    // The recording hook listens on loopback, which hooks may call only where the installer allows it.
    const ctrl = start(['controller', '--kubeconfig', kc, '--probe-address', `127.0.0.1:${port}`, '--namespace', ns, '--leader-election-namespace', 'sts-pilot-system', '--leader-election-id', ns, '--hook-allow-loopback']);
    await waitUntil('the controller in the image to be ready', 60_000, async () => {
      if (ctrl.child.exitCode !== null) throw new Error(`exited: ${ctrl.out()}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    });
    expect(ctrl.out()).to.match(/"msg":"sts-pilot \d+\.\d+\.\d+ controller starting"/);
    const hook = await new RecordingHook().start();
    try {
      await createAndSettle(c, ns, statefulSet('web', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      const from = (await readSts(c, ns, 'web')).status?.updateRevision ?? '';
      await setImage(c, ns, 'web', 'example/app:2');
      await waitUntil('the rollout to finish', 60_000, () => rolloutFinished(c, ns, 'web', from));
      expect(hook.approvals().map((x) => x.next?.name ?? 'end')).to.deep.equal(['web-1', 'web-0', 'end']);
    } finally {
      hook.stop();
    }
    process.kill(pid1(ctrl.child), 'SIGTERM');
    expect(await ctrl.exited, ctrl.out()).to.equal(0);
    expect(ctrl.out()).to.match(/"msg":"stopped"/);
  });

  it('pilot: runs an application as its child and reports it into the Pilot; SIGTERM to PID 1 stops both', async () => {
    const ns = await namespace(c, 'image-pilot');
    const pod = await createPod(c, ns, 'app-0', 'r1');
    await createPilot(c, ns, pod);
    const port = await freePort();
    const kc = withKubeconfig(c.kubeconfigPath);
    const app = "process.on('SIGTERM', () => { console.log('app got SIGTERM'); process.exit(0) }); console.log('app up'); setInterval(() => {}, 1e9)";
    const p = start([
      'pilot', '--kubeconfig', kc, '--namespace', ns, '--pod-name', 'app-0', '--revision', 'r1', '--probe-address', `127.0.0.1:${port}`, '--probe-interval', '1',
      '--', '/usr/local/bin/node', '-e', app,
    ]);
    await waitUntil('the Pilot to say Running', 60_000, async () => {
      if (p.child.exitCode !== null) throw new Error(`exited: ${p.out()}`);
      return (await readPilotStatus(c, ns, 'app-0'))?.phase === 'Running';
    });
    // Its own output line (the pilot's log also quotes the command): its SIGTERM handler is in place.
    await waitUntil('the application to say it is up', 30_000, async () => /^app up$/m.test(p.out()));
    process.kill(pid1(p.child), 'SIGTERM');
    const code = await p.exited;
    expect(code, p.out()).to.equal(0);
    expect(p.out()).to.match(/^app got SIGTERM$/m);
    expect(await readPilotStatus(c, ns, 'app-0')).to.deep.include({ phase: 'Stopped', exitCode: 0 });
  });
});
