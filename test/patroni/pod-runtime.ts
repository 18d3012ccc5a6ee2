// A NodeAgent runtime that backs each pod of a StatefulSet with a real Patroni
// member (PostgreSQL from Debian, Patroni from PyPI), wrapped by the in-pod
// pilot (`sts-pilot pilot --app patroni -- python -m patroni <config>`), as a
// container runtime would run it:
//
// - each pod has its own loopback address (its pod IP), Patroni's REST API and
//   PostgreSQL on the same two ports on every pod, as in Kubernetes;
// - the member's name is the pod's name; its data dir is keyed by the pod's
//   name, so it survives the pod's re-creation like a PersistentVolumeClaim;
// - the DCS is an etcd of the test's own (test/patroni/patroni.ts);
// - PostgreSQL refuses to run as root: as root, Patroni runs as `nobody`
//   through setpriv, from a hard-linked copy of the venv in the work dir (the
//   cache under /root is out of its reach); the pilot runs as root with the
//   test cluster's ADMIN kubeconfig (acceptable in a test).

import type { V1Pod } from '@kubernetes/client-node';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PodRuntime } from '../cluster/node-agent.ts';
import { linkedCopy } from '../cluster/linked-copy.ts';
import { afterPilotsKilled, podPilotReady, startPodPilot, stopPodPilot, terminatePilot } from '../cluster/pilot-processes.ts';
import type { Cluster } from '../integration/harness.ts';
import type { PilotProcess } from '../pilot/harness.ts';
import type { PatroniInstall } from './patroni.ts';

export interface Secrets {
  superuser: string;
  replication: string;
  rest: string;
}

export interface PatroniPodRuntimeOptions {
  c: Cluster;
  install: PatroniInstall;
  /** host:port of the etcd Patroni uses. */
  dcs: string;
  /** Kept by the caller (removed by it). */
  workDir: string;
  /** Pod names in ordinal order. */
  names: string[];
  ips: string[];
  restPort: number;
  pgPort: number;
  scope: string;
  secrets: Secrets;
  log?: (line: string) => void;
  /**
   * Merged over the bootstrap DCS configuration: e.g. `standby_cluster` for a
   * standby cluster, `slots` for the permanent slot its source keeps for it,
   * `synchronous_mode: false`.
   */
  bootstrapDcs?: Record<string, unknown>;
}

interface Member {
  name: string;
  ip: string;
  dir: string;
  pilot: PilotProcess | undefined;
  /** The uid of the pod `pilot` was started for. */
  podUid: string | undefined;
  starts: number;
}

/** Runtimes with members started and not stopped by stopAll. */
const runtimes = new Set<PatroniPodRuntime>();
// A killed Patroni leaves its PostgreSQL running: stop those too.
afterPilotsKilled(() => {
  for (const r of runtimes) r.stopAllPostgres();
});

export class PatroniPodRuntime implements PodRuntime {
  readonly members = new Map<string, Member>();
  /** Every pilot started, in order (for logs after a failure). */
  readonly pilots: { pod: string; pilot: PilotProcess }[] = [];
  private readonly o: PatroniPodRuntimeOptions;
  private readonly runAs: { uid: number; gid: number } | undefined;
  private readonly venv: string;
  /** Per member: extra `postgresql.recovery_conf` (e.g. a delayed replica), see setRecoveryConf. */
  private readonly recoveryConf = new Map<string, Record<string, string>>();

  constructor(o: PatroniPodRuntimeOptions) {
    this.o = o;
    o.names.forEach((name, i) => this.members.set(name, { name, ip: o.ips[i] as string, dir: path.join(o.workDir, name), pilot: undefined, podUid: undefined, starts: 0 }));
    const isRoot = process.getuid?.() === 0;
    this.runAs = isRoot ? { uid: Number(process.env.STS_PILOT_PG_UID ?? 65534), gid: Number(process.env.STS_PILOT_PG_GID ?? 65534) } : undefined;
    this.venv = o.install.venv;
    if (this.runAs) {
      this.venv = path.join(o.workDir, 'venv');
      linkedCopy(o.install.venv, this.venv);
      fs.chmodSync(o.workDir, 0o755);
    }
  }

  private member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new Error(`no Patroni member for pod ${name}`);
    return m;
  }

  podIP(pod: V1Pod): string | undefined {
    return this.members.get(pod.metadata?.name ?? '')?.ip;
  }

  restUrl(name: string): string {
    return `http://${this.member(name).ip}:${this.o.restPort}`;
  }

  /** libpq connection string of one member, as the superuser. */
  dsn(name: string): string {
    return `host=${this.member(name).ip} port=${this.o.pgPort} user=postgres password=${this.o.secrets.superuser} dbname=postgres connect_timeout=3`;
  }

  /** PostgreSQL addresses of all members (for a proxy to the leader). */
  endpoints(): { name: string; rest: string; host: string; port: number }[] {
    return [...this.members.values()].map((m) => ({ name: m.name, rest: `http://${m.ip}:${this.o.restPort}`, host: m.ip, port: this.o.pgPort }));
  }

  private config(m: Member): string {
    const { secrets } = this.o;
    const cfg = {
      scope: this.o.scope,
      namespace: '/sts-pilot/',
      name: m.name,
      log: { level: 'INFO' },
      restapi: {
        listen: `${m.ip}:${this.o.restPort}`,
        connect_address: `${m.ip}:${this.o.restPort}`,
        authentication: { username: 'patroni', password: secrets.rest },
      },
      etcd3: { hosts: this.o.dcs },
      bootstrap: {
        dcs: {
          ttl: 20,
          loop_wait: 2,
          retry_timeout: 5,
          maximum_lag_on_failover: 1024 * 1024,
          synchronous_mode: true,
          ...this.o.bootstrapDcs,
          postgresql: {
            use_pg_rewind: true,
            use_slots: true,
            parameters: { wal_level: 'replica', hot_standby: 'on', wal_keep_size: '256MB', max_wal_senders: 10, max_replication_slots: 10, wal_log_hints: 'on' },
          },
        },
        initdb: [{ encoding: 'UTF8' }, { locale: 'C' }],
        pg_hba: ['local all all trust', 'host replication replicator 127.0.0.0/8 md5', 'host all all 127.0.0.0/8 md5'],
      },
      postgresql: {
        listen: `${m.ip}:${this.o.pgPort}`,
        connect_address: `${m.ip}:${this.o.pgPort}`,
        data_dir: path.join(m.dir, 'data'),
        bin_dir: this.o.install.pgBin,
        pgpass: path.join(m.dir, 'pgpass'),
        authentication: {
          superuser: { username: 'postgres', password: secrets.superuser },
          replication: { username: 'replicator', password: secrets.replication },
          rewind: { username: 'rewind_user', password: secrets.replication },
        },
        parameters: { unix_socket_directories: m.dir, shared_buffers: '32MB', max_connections: 40, fsync: 'on' },
        ...(this.recoveryConf.has(m.name) ? { recovery_conf: this.recoveryConf.get(m.name) } : {}),
      },
    };
    // JSON is YAML.
    const file = path.join(m.dir, 'patroni.yml');
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2), { mode: 0o600 });
    return file;
  }

  /**
   * Rewrite one member's configuration with this `postgresql.recovery_conf`
   * (undefined: none), as a person would for a delayed replica; the caller then
   * asks Patroni to reload (POST /reload).
   */
  setRecoveryConf(name: string, conf: Record<string, string> | undefined): void {
    const m = this.member(name);
    if (conf) this.recoveryConf.set(name, conf);
    else this.recoveryConf.delete(name);
    this.config(m);
    if (this.runAs) execFileSync('chown', [`${this.runAs.uid}:${this.runAs.gid}`, path.join(m.dir, 'patroni.yml')]);
  }

  async start(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const ns = pod.metadata?.namespace ?? '';
    const m = this.member(name);
    if (m.pilot && !m.pilot.exit) {
      // The node agent starts a pod again when the first start timed out (the pilot slow to serve /healthz on a
      // loaded machine): the same pod waits for the pilot it already has; another pod may not run beside it.
      if (m.podUid === pod.metadata?.uid) return m.pilot.waitForServer();
      throw new Error(`${name}: a pilot still runs (pid ${m.pilot.pid})`);
    }
    fs.mkdirSync(m.dir, { recursive: true, mode: 0o700 });
    const file = this.config(m);
    if (this.runAs) execFileSync('chown', ['-R', `${this.runAs.uid}:${this.runAs.gid}`, m.dir]);
    const command = ['setpriv', '--pdeathsig', 'KILL'];
    if (this.runAs) command.push(`--reuid=${this.runAs.uid}`, `--regid=${this.runAs.gid}`, '--clear-groups');
    command.push('--', path.join(this.venv, 'bin', 'python'), '-m', 'patroni', file);
    m.starts++;
    this.o.log?.(`${name}: starting Patroni member (start #${m.starts}) at ${m.ip} under the pilot`);
    const pilot = await startPodPilot({
      c: this.o.c,
      pod,
      command,
      env: { HOME: m.dir, PGPASSFILE: path.join(m.dir, 'pgpass'), PYTHONDONTWRITEBYTECODE: '1', POD_NAME: name, POD_NAMESPACE: ns },
      app: 'patroni',
      appUrl: `http://${m.ip}:${this.o.restPort}`,
    });
    m.pilot = pilot;
    m.podUid = pod.metadata?.uid;
    runtimes.add(this);
    this.pilots.push({ pod: name, pilot });
    await pilot.waitForServer();
  }

  async stop(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const m = this.member(name);
    if (await stopPodPilot(name, m.pilot, this.o.log)) this.stopPostgres(m);
  }

  async ready(pod: V1Pod): Promise<boolean> {
    return podPilotReady(this.member(pod.metadata?.name ?? '').pilot);
  }

  /** Process ids of the member's Patroni (python: the pilot's child), to freeze it (SIGSTOP) in a test. */
  patroniPids(name: string): number[] {
    const pilot = this.member(name).pilot;
    if (!pilot || pilot.exit) return [];
    const r = spawnSync('pgrep', ['-P', String(pilot.pid)], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean).map(Number).filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('patroni');
      } catch {
        return false;
      }
    });
  }

  /** A PostgreSQL left running by a Patroni that was killed: stop it, as the pod's end would. */
  private stopPostgres(m: Member): void {
    const data = path.join(m.dir, 'data');
    if (!fs.existsSync(path.join(data, 'postmaster.pid'))) return;
    const args = ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20'];
    const cmd = this.runAs ? ['setpriv', `--reuid=${this.runAs.uid}`, `--regid=${this.runAs.gid}`, '--clear-groups', '--', path.join(this.o.install.pgBin, 'pg_ctl'), ...args] : [path.join(this.o.install.pgBin, 'pg_ctl'), ...args];
    spawnSync(cmd[0] as string, cmd.slice(1), { stdio: 'ignore' });
  }

  /** Synchronously, for a process on its way out. */
  stopAllPostgres(): void {
    for (const m of this.members.values()) this.stopPostgres(m);
  }

  /** Stops every member (pilot, Patroni, PostgreSQL). */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.members.values()].map(async (m) => {
        await terminatePilot(m.pilot, 30_000);
        this.stopPostgres(m);
      }),
    );
    runtimes.delete(this);
  }

  /** Last lines of a pod's pilot and Patroni output. */
  tail(name: string, lines = 30): string {
    return this.members.get(name)?.pilot?.tail(lines) ?? '';
  }
}
