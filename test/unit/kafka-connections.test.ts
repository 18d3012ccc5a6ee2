import { expect } from 'chai';
import * as net from 'node:net';
import { pino } from 'pino';
import { connectionKey, connectionStats, onAny } from '../../hooks/kafka/client.ts';
import { kafkaHook } from '../../hooks/kafka/index.ts';
import { minIsrCheck } from '../../hooks/kafka/min-isr.ts';
import { Options } from '../../hooks/kafka/options.ts';
import { readCluster, topicsOn } from '../../hooks/kafka/read.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { type KafkaAdmin, MetadataAnswer } from '../../lib/kafka/admin.ts';
import { ConnectionPool } from '../../lib/kafka/pool.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';
import { view } from './kafka-fixtures.ts';

// Issue 22, "cheaper, fresher calls": one Kafka connection per cluster, kept
// between calls and dropped on any error; min.insync.replicas read for the
// moving broker's topics only.

interface FakeConn {
  id: number;
  alive: boolean;
  closed: number;
}

/** A pool over fake connections, with timers the test fires by hand. */
function fakePool(idleMs = 1000) {
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  let n = 0;
  const opened: FakeConn[] = [];
  const pool = new ConnectionPool<FakeConn>({
    alive: (c) => c.alive,
    close: async (c) => {
      c.closed++;
    },
    idleMs,
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      (t as { cleared: boolean }).cleared = true;
    },
  });
  const open = async (): Promise<FakeConn> => {
    const c = { id: ++n, alive: true, closed: 0 };
    opened.push(c);
    return c;
  };
  /** Fire every pending idle timer, as if idleMs had passed. */
  const idle = async (): Promise<void> => {
    for (const t of timers.splice(0)) if (!t.cleared) t.fn();
    await new Promise((r) => setImmediate(r)); // closing is asynchronous
  };
  return { pool, open, opened, idle, timers };
}

describe('kafka connections: one per cluster, kept between calls', () => {
  it('reuses the connection of a key across calls; another key has its own', async () => {
    const { pool, open, opened } = fakePool();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await pool.use('cluster-a', open, async (c) => c.id));
    ids.push(await pool.use('cluster-b', open, async (c) => c.id));
    expect(ids).to.deep.equal([1, 1, 1, 2]);
    expect(opened.length).to.equal(2);
    expect(pool.stats()).to.include({ opened: 2, reused: 2, open: 2, dropped: 0 });
  });

  it('concurrent calls on one key share one open', async () => {
    const { pool, open, opened } = fakePool();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = pool.use('k', open, async (c) => {
      await gate;
      return c.id;
    });
    const b = pool.use('k', open, async (c) => c.id);
    expect(await b).to.equal(1);
    release();
    expect(await a).to.equal(1);
    expect(opened.length).to.equal(1);
  });

  it('closes a connection idle for idleMs, never one in use; the next call opens a new one', async () => {
    const { pool, open, opened, idle, timers } = fakePool(5000);
    await pool.use('k', open, async () => {});
    expect(timers.map((t) => t.ms)).to.deep.equal([5000]);
    // in use again before the timer fires: the timer is cleared, nothing is closed
    let during: number | undefined;
    await pool.use('k', open, async (c) => {
      await idle();
      during = c.closed;
    });
    expect(during).to.equal(0);
    expect(opened[0]?.closed).to.equal(0);
    await idle();
    expect(opened[0]?.closed).to.equal(1);
    expect(pool.stats()).to.include({ idleClosed: 1, open: 0 });
    expect(await pool.use('k', open, async (c) => c.id)).to.equal(2);
  });

  it('an error drops the connection (closed once its last user is done); the next call reopens', async () => {
    const { pool, open, opened } = fakePool();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // a second caller still uses the connection when the first one fails on it
    const other = pool.use('k', open, async (c) => {
      await gate;
      return c.id;
    });
    const failed = await pool.use('k', open, async () => Promise.reject(new Error('request timed out'))).catch((e: Error) => e.message);
    expect(failed).to.equal('request timed out');
    expect(opened[0]?.closed, 'not closed under the other caller').to.equal(0);
    expect(await pool.use('k', open, async (c) => c.id), 'a new connection for the next call').to.equal(2);
    release();
    expect(await other).to.equal(1);
    await new Promise((r) => setImmediate(r));
    expect(opened[0]?.closed, 'closed once its last user is done').to.equal(1);
    expect(pool.stats()).to.include({ opened: 2, dropped: 1 });
  });

  it('a connection whose socket closed (a restarted broker) is not handed out; a failed open is not kept', async () => {
    const { pool, open } = fakePool();
    await pool.use('k', open, async (c) => {
      c.alive = false;
    });
    expect(await pool.use('k', open, async (c) => c.id)).to.equal(2);
    let tries = 0;
    const refuse = async (): Promise<FakeConn> => {
      tries++;
      throw new Error('connection refused');
    };
    const p = fakePool();
    expect(await p.pool.use('k', refuse, async () => 'used').catch((e: Error) => e.message)).to.equal('connection refused');
    expect(await p.pool.use('k', p.open, async (c) => c.id)).to.equal(1);
    expect(tries).to.equal(1);
  });

  it('closeAll closes every connection (process stop), and the pool opens again afterwards', async () => {
    const { pool, open, opened } = fakePool();
    await pool.use('a', open, async () => {});
    await pool.use('b', open, async () => {});
    await pool.closeAll();
    expect(opened.map((c) => c.closed)).to.deep.equal([1, 1]);
    expect(pool.stats().open).to.equal(0);
    expect(await pool.use('a', open, async (c) => c.id)).to.equal(3);
  });

  it('the key is the cluster and the identity: another password, CA or bootstrap list is another connection; no secret in the key', () => {
    const base = { bootstrap: [{ host: 'k-0', port: 9092 }], timeoutMs: 10_000, clientId: 'sts-pilot' };
    const withPw = (password: string) => connectionKey({ ...base, sasl: { mechanism: 'PLAIN' as const, username: 'u', password } });
    expect(withPw('one')).to.equal(withPw('one'));
    expect(withPw('one')).to.not.equal(withPw('two'));
    expect(withPw('one')).to.not.contain('one');
    expect(connectionKey({ ...base, tls: { ca: 'A' } })).to.not.equal(connectionKey({ ...base, tls: { ca: 'B' } }));
    expect(connectionKey(base)).to.not.equal(connectionKey({ ...base, bootstrap: [{ host: 'k-1', port: 9092 }] }));
  });
});

describe('kafka connections: a broken connection holds, never approves', function () {
  // Real sockets, 1 s request timeouts, and the client's first import: generous on a loaded machine.
  this.timeout(60_000);
  const sockets = new Set<net.Socket>();
  let silent: net.Server;
  let port = 0;
  before(async () => {
    // Accepts connections and never answers: a frozen broker.
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as net.AddressInfo).port;
  });
  after(async () => {
    await kafkaHook.close?.();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  const ctxOf = (bootstrap: string) => ({
    statefulSet: { metadata: { name: 'kafka', namespace: 'ns' }, spec: { replicas: 3 } },
    options: Options.parse({ bootstrap, timeout: '1' }),
    signal: AbortSignal.timeout(15_000),
    log: pino({ level: 'silent' }),
    secrets: async () => ({}),
    egress: loopbackEgress,
    pilots: staticPilotReader([]),
    nextReady: null,
  });

  it('a broker that accepts and never answers: the call holds, the connection is dropped, the next call opens a new one', async () => {
    const before = connectionStats();
    const ctx = ctxOf(`127.0.0.1:${port}`);
    for (let i = 0; i < 2; i++) {
      const err = await kafkaHook.podUpdateTransition(null, null, ctx as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `call ${i + 1}`).to.be.instanceOf(HookNotReady);
      expect((err as Error).message).to.match(new RegExp(`^Kafka: .*127\\.0\\.0\\.1:${port}`));
    }
    const after = connectionStats();
    expect(after.opened - before.opened, 'a handshake per call: the failed connection is never reused').to.equal(2);
    expect(after.dropped - before.dropped).to.equal(2);
  });

  it('no broker accepts: the call holds naming each address', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const gone = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await onAny(ctxOf(`127.0.0.1:${gone}`) as never, async () => 'read').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.match(new RegExp(`^Kafka: no bootstrap broker answered \\(127\\.0\\.0\\.1:${gone}: `));
  });
});

describe('kafka reads: min.insync.replicas of the moving broker topics only', () => {
  /** An admin over fixed answers that records the configs asked for. */
  function stubAdmin(asked: string[][]): KafkaAdmin {
    const metadata = MetadataAnswer.parse({
      clusterId: 'c1',
      brokers: [],
      topics: [
        { errorCode: 0, name: 'on-2', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 2, replicaNodes: [2, 3], isrNodes: [2, 3], offlineReplicas: [] }] },
        { errorCode: 0, name: 'elsewhere', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 0, replicaNodes: [0, 1], isrNodes: [0, 1], offlineReplicas: [] }] },
        {
          errorCode: 0,
          name: 'partly-on-2',
          isInternal: false,
          partitions: [
            { errorCode: 0, partitionIndex: 0, leaderId: 0, replicaNodes: [0, 1], isrNodes: [0, 1], offlineReplicas: [] },
            { errorCode: 0, partitionIndex: 1, leaderId: 1, replicaNodes: [1, 2], isrNodes: [1, 2], offlineReplicas: [] },
          ],
        },
      ],
    });
    return {
      broker: 'stub:9092',
      metadata: async () => metadata,
      cluster: async () => ({ clusterId: 'c1', brokers: [0, 1, 2, 3].map((id) => ({ brokerId: id, host: 'h', port: 9092, isFenced: false })) }),
      quorum: async () => ({
        topics: [
          {
            topicName: '__cluster_metadata',
            partitions: [
              {
                partitionIndex: 0,
                leaderId: 0,
                leaderEpoch: 1,
                highWatermark: 1n,
                currentVoters: [0, 1, 2].map((id) => ({ replicaId: id, logEndOffset: 1n, lastFetchTimestamp: 1n, lastCaughtUpTimestamp: 1n })),
                observers: [],
              },
            ],
          },
        ],
      }),
      configs: async (resources) => {
        asked.push(resources.map((r) => `${r.type}:${r.name}`));
        return {
          results: resources.map((r) => ({
            errorCode: 0,
            errorMessage: null,
            resourceType: r.type,
            resourceName: r.name,
            configs: r.keys.map((k) => ({ name: k, value: k === 'min.insync.replicas' ? '2' : '2000' })),
          })),
        };
      },
      reassignments: async () => ({ topics: [] }),
      unregisterBroker: async () => 'unregistered',
      usage: () => ({ requests: 0, bytesSent: 0, bytesReceived: 0 }),
      close: async () => {},
    };
  }

  it('asks for the configs of the topics with a replica on the moving broker, and of no other topic', async () => {
    const asked: string[][] = [];
    const v = await readCluster(stubAdmin(asked), 2);
    expect(asked).to.deep.equal([['2:on-2', '2:partly-on-2', '4:0']]);
    // every partition is still there (health reads them all); min.insync.replicas only where it was read
    expect(v.partitions.map((p) => `${p.topic}-${p.partition}:${p.minIsr ?? '?'}`)).to.deep.equal(['on-2-0:2', 'elsewhere-0:?', 'partly-on-2-0:2', 'partly-on-2-1:2']);
    asked.length = 0;
    await readCluster(stubAdmin(asked), null);
    expect(asked, 'no broker moving (the end, podRejoined, removals): no topic config').to.deep.equal([['4:0']]);
    asked.length = 0;
    await readCluster(stubAdmin(asked), 7);
    expect(asked, 'a broker with no replica').to.deep.equal([['4:0']]);
  });

  it('topicsOn: by replica, not by leader or ISR', () => {
    const m = MetadataAnswer.parse({
      clusterId: null,
      brokers: [],
      topics: [{ errorCode: 0, name: 'out-of-sync', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1, 3], isrNodes: [1], offlineReplicas: [3] }] }],
    });
    expect(topicsOn(m, 3)).to.deep.equal(['out-of-sync']);
    expect(topicsOn(m, 0)).to.deep.equal([]);
  });

  it('a topic on the moving broker whose min.insync.replicas is unknown holds the step (never rolled as "cannot survive")', () => {
    const v = view({ topics: { orders: ['0,1,2/0,1,2'] } });
    const unknown = { ...v, partitions: v.partitions.map(({ minIsr: _, ...p }) => p) };
    expect(minIsrCheck(unknown, { pod: 'kafka-1', id: 1 }, false)).to.deep.equal({
      ok: false,
      reason: 'min.insync.replicas of orders (on broker 1) was not read: the step cannot be judged',
    });
    expect(minIsrCheck(v, { pod: 'kafka-1', id: 1 }, false)).to.deep.equal({ ok: true });
  });
});
