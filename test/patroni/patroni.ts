// What the Patroni tests run: PostgreSQL from Debian, Patroni and psycopg from
// PyPI (test/patroni/install.sh, cached outside the clone), and an etcd of
// their own as Patroni's DCS, from the binary the test control plane builds
// (the Kubernetes etcd stays clean).

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { binaries, freePort } from '../cluster/controlplane.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface PatroniInstall {
  pgBin: string;
  /** The venv (in the cache): copied where the members' user can read it, then run as `python -m patroni`. */
  venv: string;
  patroniVersion: string;
  postgresVersion: string;
}

let installed: Promise<PatroniInstall> | undefined;

/** Runs install.sh (installs on a cache miss; fails loudly with its reason). Memoized. */
export function patroniInstall(log: (l: string) => void = () => {}): Promise<PatroniInstall> {
  installed ??= (async () => {
    const child = spawn('bash', [path.join(here, 'install.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      d.toString().split('\n').filter(Boolean).forEach(log);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`test/patroni/install.sh failed (exit ${code}):\n${err.slice(-3000)}`);
    const kv = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const pgBin = kv.pg_bin ?? '';
    const venv = kv.venv ?? '';
    const patroniVersion = spawnSync(path.join(venv, 'bin', 'python'), ['-c', 'from patroni.version import __version__; print(__version__)'], { encoding: 'utf8' }).stdout.trim();
    const postgresVersion = execFileSync(path.join(pgBin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
    if (!patroniVersion) throw new Error(`the venv ${venv} cannot import patroni`);
    return { pgBin, venv, patroniVersion, postgresVersion };
  })();
  installed.catch(() => (installed = undefined));
  return installed;
}

export interface Dcs {
  url: string;
  hostPort: string;
  stop(): Promise<void>;
}

/** A one-member etcd on loopback for Patroni, data in `dir`. */
export async function startDcs(dir: string, log: (l: string) => void = () => {}): Promise<Dcs> {
  const bin = path.join(await binaries(log), 'etcd');
  const [port, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  fs.mkdirSync(dir, { recursive: true });
  const out = fs.openSync(path.join(dir, 'etcd.log'), 'a');
  const child: ChildProcess = spawn(
    bin,
    [
      `--data-dir=${path.join(dir, 'data')}`, `--listen-client-urls=${url}`, `--advertise-client-urls=${url}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=default=http://127.0.0.1:${peer}`, '--log-level=warn',
    ],
    { stdio: ['ignore', out, out] },
  );
  const kill = (): void => void child.kill('SIGKILL');
  process.on('exit', kill);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`etcd for Patroni exited (${child.exitCode}): ${fs.readFileSync(path.join(dir, 'etcd.log'), 'utf8').slice(-2000)}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`etcd for Patroni did not answer ${url}/health within 30 s`);
    await sleep(200);
  }
  return {
    url,
    hostPort: `127.0.0.1:${port}`,
    stop: async () => {
      process.off('exit', kill);
      if (child.exitCode !== null) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(kill, 10_000);
      await done;
      clearTimeout(t);
    },
  };
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * n loopback addresses 127.0.X.10.. (one per pod, as pods have their own IPs)
 * and two ports free on all of them: Patroni's REST API and PostgreSQL, the
 * same on every pod as in Kubernetes.
 */
export async function podAddresses(n: number): Promise<{ ips: string[]; restPort: number; pgPort: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const x = 2 + Math.floor(Math.random() * 250);
    const ips = Array.from({ length: n }, (_, i) => `127.0.${x}.${10 + i}`);
    const restPort = 18_000 + Math.floor(Math.random() * 2000);
    const pgPort = restPort + 2000;
    let ok = true;
    for (const ip of ips) ok = ok && (await portFree(ip, restPort)) && (await portFree(ip, pgPort));
    if (ok) return { ips, restPort, pgPort };
  }
  throw new Error('no free loopback addresses and ports for the Patroni pods');
}
