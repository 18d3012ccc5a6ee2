import { readdir, stat, statfs } from 'node:fs/promises';
import * as path from 'node:path';
import type { CassandraDisk } from '../pilot/schema.ts';

// The node's data directory, read from disk in the pod: the filesystem's size
// and free bytes (statfs of the mounted volume: what is really left, after the
// commit log, snapshots and anything else on it — better than a PVC's nominal
// capacity), and the node's load, the bytes a decommission streams away: the
// sizes of every file under the data directory but its snapshots/ and backups/
// (hard links Cassandra does not stream, and `nodetool clearsnapshot` frees),
// what `nodetool status` calls Load. The walk is done at most every
// loadRefreshMs (default 60 s, the interval at which Cassandra itself gossips
// its load), so a probe every second stays cheap — but again at the next probe
// while it found nothing; statfs is one syscall and is read at every probe.

/** Cassandra's default data_file_directories in its images and under cass-operator (the server-data volume at /var/lib/cassandra). */
export const DEFAULT_CASSANDRA_DATA_DIR = '/var/lib/cassandra/data';
export const LOAD_REFRESH_MS = 60_000;

/** Directories whose files Cassandra does not stream: snapshots (nodetool snapshot, auto_snapshot) and incremental backups. */
const NOT_STREAMED = new Set(['snapshots', 'backups']);

/** Bytes of every regular file under `dir`, snapshots/ and backups/ left out. A file gone meanwhile (compacted away) counts nothing. */
export async function dataLoad(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string, top: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      // The top must exist; a table directory dropped during the walk counts nothing.
      if (!top && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!NOT_STREAMED.has(e.name)) await walk(p, false);
      } else if (e.isFile()) {
        try {
          total += (await stat(p)).size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
  };
  await walk(dir, true);
  return total;
}

/** The filesystem that holds `dir`: its size and the bytes an unprivileged process may still write (bavail, as df shows). */
export async function volumeOf(dir: string): Promise<{ size: number; free: number }> {
  const s = await statfs(dir);
  return { size: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

/** A reader of one data directory that walks it for the load at most every refreshMs, or when forced. */
export function dataDirReader(dir: string, o: { refreshMs?: number; now?: () => number } = {}): (force?: boolean) => Promise<CassandraDisk> {
  const refreshMs = o.refreshMs ?? LOAD_REFRESH_MS;
  const now = o.now ?? Date.now;
  let last: { load: number; at: number } | undefined;
  return async (force = false) => {
    const vol = await volumeOf(dir);
    // A walk that found nothing is done again at the next probe: the pilot starts before its JVM writes its first
    // SSTable (found on the real ring: a load of 0 kept for a minute).
    if (force || !last || last.load === 0 || now() - last.at >= refreshMs) {
      const at = now();
      last = { load: await dataLoad(dir), at };
    }
    return { dataDir: dir, size: vol.size, free: vol.free, load: last.load, loadTime: new Date(last.at).toISOString() };
  };
}
