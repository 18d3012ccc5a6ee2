// The pure parts of the pilot's Cassandra probe: hint file names, their tally
// per target node (a directory of real files), peer liveness by gossip
// heartbeat, and the readiness verdict.

import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationStatus } from '../../lib/pilot/schema.ts';
import { parseHintFileName, readHintsDir, tallyHints } from '../../lib/probes/cassandra-hints.ts';
import { HeartbeatLiveness, LIVENESS_WINDOW_MS } from '../../lib/probes/cassandra-liveness.ts';
import { cassandraProbe, gossipStatus } from '../../lib/probes/cassandra.ts';
import { dataDirReader, dataLoad } from '../../lib/probes/cassandra-disk.ts';
import { significant } from '../../lib/pilot/status.ts';
import { applicationHealthy, applicationReady } from '../../lib/probes/verdict.ts';

const A = '5b6a1f0e-7c1d-4f4e-9a36-2d3c4b5a6f70';
const B = 'c0ffee00-1111-4222-8333-444455556666';

describe('cassandra probe: hint files', () => {
  it('takes a hint file name apart (host id, timestamp, version)', () => {
    expect(parseHintFileName(`${A}-1765130000123-2.hints`)).to.deep.equal({ hostId: A, timestamp: 1765130000123, version: 2 });
    expect(parseHintFileName(`${A.toUpperCase()}-1-7.hints`)?.hostId).to.equal(A);
  });

  it('ignores everything else in the directory', () => {
    for (const n of [`${A}-1765130000123-2.crc32`, `${A}-1765130000123.hints`, `${A}-x-2.hints`, 'hints', `${A}-1-2.hints.tmp`, `not-a-uuid-1-2.hints`, '']) {
      expect(parseHintFileName(n), n).to.equal(undefined);
    }
  });

  it('tallies files and bytes per target host id, in host id order', () => {
    const t = tallyHints([
      { name: `${B}-3-2.hints`, bytes: 10 },
      { name: `${A}-1-2.hints`, bytes: 100 },
      { name: `${A}-1-2.crc32`, bytes: 4 },
      { name: `${A}-2-2.hints`, bytes: 0 },
    ]);
    expect(t).to.deep.equal([
      { hostId: A, files: 2, bytes: 100 },
      { hostId: B, files: 1, bytes: 10 },
    ]);
    expect(tallyHints([])).to.deep.equal([]);
  });

  it('reads a real directory, an empty file (still being written) counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-hints-'));
    try {
      expect(await readHintsDir(dir)).to.deep.equal([]);
      writeFileSync(join(dir, `${A}-1-2.hints`), Buffer.alloc(300));
      writeFileSync(join(dir, `${A}-1-2.crc32`), '123');
      writeFileSync(join(dir, `${B}-9-2.hints`), '');
      expect(await readHintsDir(dir)).to.deep.equal([
        { hostId: A, files: 1, bytes: 300 },
        { hostId: B, files: 1, bytes: 0 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing directory is an error, not an empty list', async () => {
    let err: unknown;
    await readHintsDir('/nonexistent/sts-pilot-hints').catch((e: unknown) => (err = e));
    expect((err as NodeJS.ErrnoException | undefined)?.code).to.equal('ENOENT');
  });
});

describe('cassandra probe: peer liveness by gossip heartbeat', () => {
  const W = 20_000;

  it('the default window is longer than the ~18 s after which phi_convict_threshold 8 convicts with 1 s rounds', () => {
    expect(LIVENESS_WINDOW_MS).to.be.greaterThan((8 / Math.log10(Math.E)) * 1000);
  });

  it('unknown after one read; alive once the heartbeat advances', () => {
    const l = new HeartbeatLiveness(W);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], 0).has(A)).to.equal(false);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], 1000).has(A)).to.equal(false);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 6 }], 2000).get(A)).to.equal(true);
  });

  it('alive for a window after the last advance, then not', () => {
    const l = new HeartbeatLiveness(W);
    l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], 0);
    l.observe([{ hostId: A, generation: 100, heartbeat: 9 }], 4000);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 9 }], 4000 + W - 1).get(A)).to.equal(true);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 9 }], 4000 + W).get(A)).to.equal(false);
  });

  it('a peer never heard to advance is dead after a window from when it was first seen', () => {
    const l = new HeartbeatLiveness(W);
    l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], 0);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], W - 1).has(A)).to.equal(false);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 5 }], W).get(A)).to.equal(false);
  });

  it('a restart (new generation, heartbeat from 0) is an advance; older gossip never is', () => {
    const l = new HeartbeatLiveness(W);
    l.observe([{ hostId: A, generation: 100, heartbeat: 500 }], 0);
    expect(l.observe([{ hostId: A, generation: 100, heartbeat: 500 }], W).get(A)).to.equal(false);
    expect(l.observe([{ hostId: A, generation: 101, heartbeat: 1 }], W + 1000).get(A)).to.equal(true);
    // A stale row from the old generation does not reset anything.
    l.observe([{ hostId: A, generation: 100, heartbeat: 900 }], W + 2000);
    expect(l.observe([{ hostId: A, generation: 101, heartbeat: 1 }], 2 * W + 999).get(A)).to.equal(true);
    expect(l.observe([{ hostId: A, generation: 101, heartbeat: 1 }], 2 * W + 1000).get(A)).to.equal(false);
  });

  it('peers are judged apart, and a peer gone from gossip is forgotten', () => {
    const l = new HeartbeatLiveness(W);
    l.observe([{ hostId: A, generation: 1, heartbeat: 1 }, { hostId: B, generation: 1, heartbeat: 1 }], 0);
    const m = l.observe([{ hostId: A, generation: 1, heartbeat: 2 }, { hostId: B, generation: 1, heartbeat: 1 }], W);
    expect(m.get(A)).to.equal(true);
    expect(m.get(B)).to.equal(false);
    l.observe([{ hostId: A, generation: 1, heartbeat: 3 }], W + 1);
    // B back in gossip: unknown again, not "dead since long ago".
    expect(l.observe([{ hostId: B, generation: 1, heartbeat: 1 }], W + 2).has(B)).to.equal(false);
  });
});

describe('cassandra probe: gossip status and readiness', () => {
  it('the STATUS value without its tokens', () => {
    expect(gossipStatus('NORMAL,-9180523403917946369')).to.equal('NORMAL');
    expect(gossipStatus('shutdown,true')).to.equal('shutdown');
    expect(gossipStatus('BOOT')).to.equal('BOOT');
    expect(gossipStatus('')).to.equal(undefined);
    expect(gossipStatus(null)).to.equal(undefined);
  });

  const app = (cassandra: Record<string, unknown> | undefined, error?: string) =>
    ApplicationStatus.parse({ probe: 'cassandra', ...(cassandra ? { cassandra } : {}), ...(error ? { error } : {}) });

  it('ready: NORMAL in its own gossip and serving CQL clients', () => {
    const ready = app({ hostId: A, status: 'NORMAL', nativeTransport: true, peers: [{ hostId: B, status: 'shutdown', alive: false }] });
    expect(applicationReady(ready)).to.deep.equal({ ok: true });
    expect(applicationHealthy(ready)).to.deep.equal({ ok: true });
  });

  it('not ready: unknown node, joining or leaving, native transport off or unknown; the reason says which', () => {
    const cases: [ApplicationStatus, RegExp][] = [
      [app(undefined, 'cannot connect to Cassandra at 127.0.0.1:9042: refused'), /does not report itself: cannot connect/],
      [app({ hints: [] }), /does not report itself/],
      [app({ hostId: A, status: 'BOOT', nativeTransport: true }), /is BOOT, not NORMAL/],
      [app({ hostId: A, nativeTransport: true }), /unknown gossip state/],
      [app({ hostId: A, status: 'NORMAL', nativeTransport: false }), /native transport off/],
      [app({ hostId: A, status: 'NORMAL' }), /native transport unknown/],
    ];
    for (const [a, re] of cases) {
      const v = applicationReady(a);
      expect(v.ok, JSON.stringify(a)).to.equal(false);
      expect(v.ok ? '' : v.reason).to.match(re);
    }
  });
});

describe('cassandra probe: the data directory (free space and load)', () => {
  const tree = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-data-'));
    const t = join(dir, 'app', 'kv-0a1b');
    mkdirSync(join(t, 'snapshots', 'before-drop'), { recursive: true });
    mkdirSync(join(t, 'backups'), { recursive: true });
    mkdirSync(join(dir, 'system', 'local-7ad5'), { recursive: true });
    writeFileSync(join(t, 'nb-1-big-Data.db'), Buffer.alloc(5000));
    writeFileSync(join(t, 'nb-1-big-Index.db'), Buffer.alloc(300));
    writeFileSync(join(dir, 'system', 'local-7ad5', 'nb-1-big-Data.db'), Buffer.alloc(200));
    // Hard links Cassandra does not stream: not the node's load.
    writeFileSync(join(t, 'snapshots', 'before-drop', 'nb-1-big-Data.db'), Buffer.alloc(70_000));
    writeFileSync(join(t, 'backups', 'nb-1-big-Data.db'), Buffer.alloc(9000));
    return dir;
  };

  it('sums the files under the data directory, snapshots/ and backups/ left out', async () => {
    const dir = tree();
    try {
      expect(await dataLoad(dir)).to.equal(5500);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the volume's size and free bytes as statfs tells them, and walks for the load at most every refresh", async () => {
    const dir = tree();
    let t = 1_000_000;
    try {
      const read = dataDirReader(dir, { refreshMs: 60_000, now: () => t });
      const a = await read();
      const fs = await statfs(dir);
      expect(a).to.include({ dataDir: dir, size: fs.blocks * fs.bsize, load: 5500, loadTime: new Date(1_000_000).toISOString() });
      // Free moves with everything else on the disk: within 64 MiB of a statfs a moment later.
      expect(Math.abs(a.free - fs.bavail * fs.bsize)).to.be.below(64 * 1024 * 1024);
      writeFileSync(join(dir, 'app', 'kv-0a1b', 'nb-2-big-Data.db'), Buffer.alloc(1000));
      t += 59_000;
      expect((await read()).load, 'not walked again within the refresh').to.equal(5500);
      t += 1000;
      expect(await read()).to.include({ load: 6500, loadTime: new Date(1_060_000).toISOString() });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an empty data directory (the JVM not started yet) is walked again at the next probe, not a minute later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-data-'));
    let t = 0;
    try {
      const read = dataDirReader(dir, { refreshMs: 60_000, now: () => t });
      expect((await read()).load).to.equal(0);
      writeFileSync(join(dir, 'nb-1-big-Data.db'), Buffer.alloc(10));
      t += 1000;
      expect((await read()).load).to.equal(10);
      writeFileSync(join(dir, 'nb-2-big-Data.db'), Buffer.alloc(10));
      t += 1000;
      expect((await read()).load, 'then once a minute').to.equal(10);
      // ... or when forced (the probe forces it when the node's state or streaming changed: a bootstrap done).
      expect((await read(true)).load).to.equal(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing data directory is an error (the disk unknown), not a load of 0', async () => {
    const err = (p: Promise<unknown>) => p.then(() => 'resolved', (e: NodeJS.ErrnoException) => e.code);
    expect(await err(dataDirReader('/nonexistent/sts-pilot/data')())).to.equal('ENOENT');
    expect(await err(dataLoad('/nonexistent/sts-pilot/data'))).to.equal('ENOENT');
  });

  it('the Pilot schema takes the block; its figures ride with the heartbeat, a new data directory is a change', () => {
    const disk = { dataDir: '/var/lib/cassandra/data', size: 100, free: 50, load: 10 };
    const app = (d: typeof disk) => ApplicationStatus.parse({ probe: 'cassandra', cassandra: { hostId: A, disk: d } });
    expect(app(disk).cassandra?.disk).to.deep.equal(disk);
    const st = (d: typeof disk) => ({ phase: 'Running' as const, application: app(d) });
    expect(significant(st(disk))).to.equal(significant(st({ ...disk, free: 49, load: 11 })));
    expect(significant(st(disk))).to.not.equal(significant(st({ ...disk, dataDir: '/data' })));
  });
});

describe('cassandra probe: the disk without the node', () => {
  it('reports the data directory even while the node does not answer (a JVM starting or stopping), and says why the rest is unknown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-data-'));
    writeFileSync(join(dir, 'f.db'), Buffer.alloc(1234));
    const p = cassandraProbe({ host: '127.0.0.1', port: 1, dataDir: dir, timeoutMs: 2000 });
    try {
      const s = await p.probe(AbortSignal.timeout(10_000));
      expect(s.cassandra?.disk).to.include({ dataDir: dir, load: 1234 });
      expect(s.cassandra?.disk?.free).to.be.above(0);
      expect(s.error).to.match(/cannot connect to Cassandra at 127\.0\.0\.1:1/);
      const missing = await cassandraProbe({ host: '127.0.0.1', port: 1, dataDir: join(dir, 'nope'), timeoutMs: 2000 }).probe(AbortSignal.timeout(10_000));
      expect(missing.cassandra?.disk).to.equal(undefined);
      expect(missing.error).to.match(/cannot read the data directory .*nope: .*ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
