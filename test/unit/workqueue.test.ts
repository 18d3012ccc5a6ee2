import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue } from '../../lib/workqueue.ts';

// Waits for a state rather than for a fixed time: on a loaded machine a timer
// fires late, and a test that slept "long enough" failed (CI shares 2 cores
// with JVMs). The checks after it are the same.
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}
const idle = (q: WorkQueue): boolean => {
  const s = q.stats(Date.now());
  return s.depth === 0 && s.unfinishedSeconds === 0;
};

describe('WorkQueue', () => {
  it('coalesces adds of a queued key', async () => {
    const seen: string[] = [];
    const q = new WorkQueue({
      workers: 1,
      handler: async (k) => {
        seen.push(k);
        await sleep(10);
      },
    });
    q.add('busy');
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    await until('three runs and an idle queue', () => seen.length >= 3 && idle(q));
    expect(seen).to.deep.equal(['busy', 'a', 'b']);
    await q.shutdown();
  });

  it('never runs one key twice at once, and reruns it if added while running', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const q = new WorkQueue({
      workers: 4,
      handler: async () => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        runs++;
        await sleep(20);
        concurrent--;
      },
    });
    q.add('k');
    await sleep(5);
    q.add('k');
    q.add('k');
    await until('two runs and an idle queue', () => runs >= 2 && idle(q));
    expect(maxConcurrent).to.equal(1);
    expect(runs).to.equal(2);
    await q.shutdown();
  });

  it('backs off exponentially per key, capped, and forget resets it', async () => {
    const q = new WorkQueue({ workers: 1, baseDelayMs: 100, maxDelayMs: 500, handler: async () => {} });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('x'))).to.deep.equal([100, 200, 400, 500, 500]);
    expect(q.addRateLimited('y')).to.equal(100);
    q.forget('x');
    expect(q.addRateLimited('x')).to.equal(100);
    await q.shutdown();
  });

  it('an immediate add wins over a pending delayed one', async () => {
    const at: number[] = [];
    const start = Date.now();
    const q = new WorkQueue({ workers: 1, handler: async () => void at.push(Date.now() - start) });
    q.addAfter('k', 10_000);
    q.add('k');
    await until('the run', () => at.length >= 1 && idle(q));
    expect(at).to.have.length(1);
    expect(at[0]).to.be.lessThan(1000);
    await q.shutdown();
  });

  it('retries a handler that throws, and reports the error', async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const q = new WorkQueue({
      workers: 1,
      baseDelayMs: 10,
      handler: async () => {
        calls++;
        if (calls < 3) throw new Error('boom');
      },
      onError: (_k, e) => errors.push(e),
    });
    q.add('k');
    await until('three calls and an idle queue', () => calls >= 3 && idle(q));
    expect(calls).to.equal(3);
    expect(errors).to.have.length(2);
    await q.shutdown();
  });

  it('shutdown waits for running handlers and drops queued work', async () => {
    const done: string[] = [];
    const q = new WorkQueue({
      workers: 1,
      handler: async (k) => {
        await sleep(30);
        done.push(k);
      },
    });
    q.add('a');
    q.add('b');
    await sleep(5);
    await q.shutdown();
    expect(done).to.deep.equal(['a']);
  });
});

describe('WorkQueue metrics (client-go style)', () => {
  it('reports adds (not coalesced ones), retries, wait and work time, and the running handlers', async () => {
    const seen = { added: 0, retried: 0, waited: [] as number[], worked: [] as number[] };
    let release: () => void = () => {};
    const q = new WorkQueue({
      workers: 1,
      baseDelayMs: 10_000,
      handler: (k) => (k === 'slow' ? new Promise<void>((r) => (release = r)) : Promise.resolve()),
      observer: { added: () => seen.added++, retried: () => seen.retried++, waited: (s) => seen.waited.push(s), worked: (s) => seen.worked.push(s) },
    });
    q.add('slow');
    q.add('a');
    q.add('a');
    q.add('b');
    expect(seen.added, 'a second add of a waiting key is not an add').to.equal(3);
    await sleep(30);
    const during = q.stats(Date.now());
    expect(during.depth).to.equal(2);
    expect(during.longestSeconds).to.be.within(0.02, 1);
    expect(during.unfinishedSeconds).to.equal(during.longestSeconds);
    release();
    await until('the queue idle after the release', () => idle(q));
    expect(q.stats(Date.now())).to.deep.equal({ depth: 0, unfinishedSeconds: 0, longestSeconds: 0 });
    expect(seen.worked).to.have.length(3);
    expect(seen.worked[0]).to.be.at.least(0.02);
    expect(seen.waited[2], 'b waited for slow').to.be.at.least(0.02);
    q.addRateLimited('a');
    expect(seen.retried).to.equal(1);
    await q.shutdown();
  });
});
