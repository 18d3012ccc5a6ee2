// A client workload for the ring tests: one write and one read back at QUORUM
// every `everyMs`, on app.kv (k int PRIMARY KEY, v int). Every failure is kept
// with its time, every acknowledged key is kept to be read back at ALL.

import cassandra from 'cassandra-driver';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Writes (k, k) and reads back acknowledged keys at QUORUM, one of each every `everyMs`. */
export class QuorumLoop {
  readonly acked = new Set<number>();
  writes = 0;
  reads = 0;
  readonly failures: string[] = [];
  private next = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  start(everyMs: number): this {
    const q = { prepare: true, isIdempotent: true, consistency: cassandra.types.consistencies.quorum };
    this.done = (async () => {
      while (!this.stopped) {
        const k = this.next++;
        this.writes++;
        try {
          await this.client.execute('INSERT INTO app.kv (k, v) VALUES (?, ?)', [k, k], q);
          this.acked.add(k);
        } catch (err) {
          this.failures.push(`write ${k} at ${new Date().toISOString()}: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (this.acked.size > 0) {
          const r = [...this.acked][Math.floor(Math.random() * this.acked.size)] as number;
          this.reads++;
          try {
            const rs = await this.client.execute('SELECT v FROM app.kv WHERE k = ?', [r], q);
            if (rs.rows[0]?.get('v') !== r) this.failures.push(`read ${r}: ${rs.rows.length} rows`);
          } catch (err) {
            this.failures.push(`read ${r} at ${new Date().toISOString()}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        await sleep(everyMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Acknowledged keys not read back at ALL. */
  async missingAtAll(): Promise<number[]> {
    const missing: number[] = [];
    for (const k of this.acked) {
      const rs = await this.client.execute('SELECT v FROM app.kv WHERE k = ?', [k], { prepare: true, consistency: cassandra.types.consistencies.all });
      if (rs.rows.length !== 1) missing.push(k);
    }
    return missing;
  }
}
