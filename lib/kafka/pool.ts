// One open connection per key, shared by every caller that names the key, so
// that a hook call costs its requests and not a TCP (and TLS, SASL) handshake
// each time. The kafka hook keys it by cluster and identity (bootstrap list,
// TLS, credentials): StatefulSets of one Kafka cluster share the connection.
//
// Safety before reuse: a connection that failed a caller once is never handed
// out again (the next caller opens a new one), nor one whose socket closed (a
// restarted broker). Only the connection is kept: callers read the cluster
// afresh over it on every call. Idle connections are closed after `idleMs`,
// and closeAll() closes everything at process stop.

/** A timer handle, whatever setTimer returns. */
export type Timer = object;

export interface PoolOptions<T> {
  /** Still usable (its socket open)? Asked before each reuse. */
  alive(conn: T): boolean;
  close(conn: T): Promise<void>;
  /** Closed after this long unused. */
  idleMs: number;
  /** Timers, replaceable in tests. */
  setTimer?: (fn: () => void, ms: number) => Timer;
  clearTimer?: (t: Timer) => void;
}

/** What the pool did, since it was made: for logs and the bench. */
export interface PoolStats {
  /** Connections opened (handshakes). */
  opened: number;
  /** Uses of an already open connection. */
  reused: number;
  /** Dropped after a caller's error or a closed socket. */
  dropped: number;
  /** Closed after being idle for idleMs. */
  idleClosed: number;
  /** Open now. */
  open: number;
}

interface Entry<T> {
  conn: Promise<T>;
  users: number;
  /** No longer handed out: closed when its last user is done. */
  dropped: boolean;
  timer: Timer | undefined;
  closed: boolean;
}

export class ConnectionPool<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly o: Required<PoolOptions<T>>;
  private readonly counts = { opened: 0, reused: 0, dropped: 0, idleClosed: 0 };

  constructor(o: PoolOptions<T>) {
    this.o = {
      setTimer: (fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref(); // an idle connection never keeps the process alive
        return t;
      },
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      ...o,
    };
  }

  /**
   * `fn` on the connection of `key`, opened with `open` if there is none
   * usable. If `fn` (or `open`) throws, the connection is dropped (closed once
   * no other caller uses it) and the error is the caller's: nothing is retried
   * here, so a broken connection can only make a caller fail, never answer.
   */
  async use<R>(key: string, open: () => Promise<T>, fn: (conn: T) => Promise<R>): Promise<R> {
    const entry = await this.entryFor(key, open);
    entry.users++;
    if (entry.timer) {
      this.o.clearTimer(entry.timer);
      entry.timer = undefined;
    }
    try {
      return await fn(await entry.conn);
    } catch (err) {
      this.drop(key, entry);
      throw err;
    } finally {
      entry.users--;
      this.release(key, entry);
    }
  }

  /** The usable connection of `key`, or a new one; a dead one found on the way is dropped. */
  private async entryFor(key: string, open: () => Promise<T>): Promise<Entry<T>> {
    // A few looks: while this one waits on a connection's open, another caller may drop it or put a fresh one in its place.
    for (let look = 0; look < 3; look++) {
      const e = this.entries.get(key);
      if (!e) break;
      const ok = await this.usable(e);
      if (this.entries.get(key) !== e) continue;
      if (ok) {
        this.counts.reused++;
        return e;
      }
      this.drop(key, e);
    }
    const fresh: Entry<T> = { conn: open(), users: 0, dropped: false, timer: undefined, closed: false };
    this.counts.opened++;
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    this.entries.set(key, fresh);
    return fresh;
  }

  /** Close every connection (process stop); the pool stays usable. */
  async closeAll(): Promise<void> {
    const all = [...this.entries];
    this.entries.clear();
    await Promise.all(
      all.map(async ([, e]) => {
        e.dropped = true;
        if (e.timer) this.o.clearTimer(e.timer);
        await this.closeEntry(e);
      }),
    );
  }

  stats(): PoolStats {
    return { ...this.counts, open: this.entries.size };
  }

  private async usable(e: Entry<T>): Promise<boolean> {
    try {
      return this.o.alive(await e.conn);
    } catch {
      return false; // its open failed: another caller's error, a new one is opened
    }
  }

  private drop(key: string, e: Entry<T>): void {
    if (e.dropped) return;
    e.dropped = true;
    this.counts.dropped++;
    if (this.entries.get(key) === e) this.entries.delete(key);
    if (e.timer) this.o.clearTimer(e.timer);
    e.timer = undefined;
    if (e.users === 0) void this.closeEntry(e);
  }

  private release(key: string, e: Entry<T>): void {
    if (e.users > 0) return;
    if (e.dropped) {
      void this.closeEntry(e);
      return;
    }
    e.timer = this.o.setTimer(() => {
      if (e.users > 0 || this.entries.get(key) !== e) return;
      this.entries.delete(key);
      e.dropped = true;
      this.counts.idleClosed++;
      void this.closeEntry(e);
    }, this.o.idleMs);
  }

  private async closeEntry(e: Entry<T>): Promise<void> {
    if (e.closed) return;
    e.closed = true;
    let conn: T;
    try {
      conn = await e.conn;
    } catch {
      return; // never opened
    }
    await this.o.close(conn).catch(() => {});
  }
}
