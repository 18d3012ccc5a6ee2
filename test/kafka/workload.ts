// A producer that writes continuously (acks=all, idempotent) and remembers every
// acknowledged record with its latency, and a consumer that reads everything
// back: what "zero acknowledged records lost" is measured with.

import { Consumer, MessagesStreamModes, ProduceAcks, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Send {
  /** When the send began and how long until it was acknowledged (ms), or failed. */
  at: number;
  ms: number;
  ok: boolean;
}

/** Sends one record at a time, `key = value = p-<n>`, round-robin over the partitions by key hash. */
export class ProduceLoop {
  readonly acked = new Set<string>();
  readonly sends: Send[] = [];
  /** Failed sends by error text: each is a record the producer gave up on after its own retries. */
  readonly errors = new Map<string, number>();
  private readonly producer: Producer<string, string, string, string>;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private n = 0;
  private readonly topic: string;

  constructor(bootstrap: string, topic: string) {
    this.topic = topic;
    this.producer = new Producer({
      clientId: 'sts-pilot-test-producer',
      bootstrapBrokers: bootstrap.split(','),
      serializers: stringSerializers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      // Retriable errors (a leader moving, NOT_ENOUGH_REPLICAS) are retried inside the client, as a Java producer's delivery.timeout.ms would.
      retries: 20,
      retryDelay: 250,
      timeout: 10_000,
    });
  }

  start(pauseMs = 20): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const v = `p-${this.n++}`;
        const at = Date.now();
        try {
          await this.producer.send({ messages: [{ topic: this.topic, key: v, value: v }] });
          this.acked.add(v);
          this.sends.push({ at, ms: Date.now() - at, ok: true });
        } catch (err) {
          this.sends.push({ at, ms: Date.now() - at, ok: false });
          const e = err as { message?: string; errors?: { apiId?: string; message?: string }[] };
          const key = e.errors?.map((x) => x.apiId ?? x.message).join(',') || e.message || String(err);
          this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
        }
        if (pauseMs > 0) await sleep(pauseMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.producer.close().catch(() => {});
  }

  /** Latencies of acknowledged sends begun in [from, to). */
  latencies(from: number, to: number): number[] {
    return this.sends.filter((s) => s.ok && s.at >= from && s.at < to).map((s) => s.ms);
  }
}

/** Reads the topic from the beginning, for as long as it runs; remembers every value. */
export class ConsumeLoop {
  readonly seen = new Set<string>();
  records = 0;
  errors = 0;
  private readonly consumer: Consumer<string, string, string, string>;
  private stream: Awaited<ReturnType<Consumer<string, string, string, string>['consume']>> | undefined;

  constructor(bootstrap: string, groupId: string) {
    this.consumer = new Consumer({
      clientId: 'sts-pilot-test-consumer',
      groupId,
      bootstrapBrokers: bootstrap.split(','),
      deserializers: stringDeserializers,
      retries: 20,
      retryDelay: 500,
      timeout: 10_000,
    });
    this.consumer.on('error', () => this.errors++);
  }

  async start(topic: string): Promise<this> {
    this.stream = await this.consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: true, sessionTimeout: 20_000, heartbeatInterval: 1000 });
    this.stream.on('data', (m: { value: string }) => {
      this.records++;
      this.seen.add(m.value);
    });
    this.stream.on('error', () => this.errors++);
    return this;
  }

  /** Waits until every value in `want` was read, or the time is up; returns those still missing. */
  async missing(want: Iterable<string>, timeoutMs: number): Promise<string[]> {
    const all = [...want];
    const deadline = Date.now() + timeoutMs;
    let out = all.filter((v) => !this.seen.has(v));
    while (out.length > 0 && Date.now() < deadline) {
      await sleep(500);
      out = out.filter((v) => !this.seen.has(v));
    }
    return out;
  }

  async stop(): Promise<void> {
    await this.stream?.close().catch(() => {});
    await this.consumer.close(true).catch(() => {});
  }
}

/** p50/p99/max of a list of ms, as text. */
export function spread(ms: number[]): string {
  if (ms.length === 0) return 'no sends';
  const s = [...ms].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))] as number;
  return `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${s.at(-1)} ms (${s.length} sends)`;
}
