import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { CassandraHints } from '../pilot/schema.ts';

// The hints directory of a Cassandra node, read from disk: one file per target
// node and writer, `<hostId>-<timestamp>-<version>.hints` (beside it a
// `.crc32` file once it is closed). The directory is read rather than
// system_views.pending_hints because, measured on 5.0.6, pending_hints does not
// list a file its writer still has open: the hints of a node that is down right
// now would be missed, which is the case a rollout must see.

const HINT_FILE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-(\d+)-(\d+)\.hints$/i;

export interface HintFile {
  hostId: string;
  /** When the writer opened it, ms since the epoch. */
  timestamp: number;
  /** The hints messaging version. */
  version: number;
}

/** A hint file's name taken apart; undefined for anything else in the directory (.crc32, temporary files). */
export function parseHintFileName(name: string): HintFile | undefined {
  const m = HINT_FILE.exec(name);
  if (!m) return undefined;
  return { hostId: (m[1] as string).toLowerCase(), timestamp: Number(m[2]), version: Number(m[3]) };
}

/** Files and bytes per target host id, sorted by host id (a stable order: the Pilot is written only on change). */
export function tallyHints(files: readonly { name: string; bytes: number }[]): CassandraHints[] {
  const by = new Map<string, CassandraHints>();
  for (const f of files) {
    const h = parseHintFileName(f.name);
    if (!h) continue;
    const t = by.get(h.hostId) ?? { hostId: h.hostId, files: 0, bytes: 0 };
    t.files++;
    t.bytes += f.bytes;
    by.set(h.hostId, t);
  }
  return [...by.values()].sort((a, b) => a.hostId.localeCompare(b.hostId));
}

/** Lists `dir` and tallies its hint files. A file gone between the listing and its stat (delivered meanwhile) is left out. */
export async function readHintsDir(dir: string): Promise<CassandraHints[]> {
  const names = (await readdir(dir)).filter((n) => parseHintFileName(n));
  const files = await Promise.all(
    names.map(async (name) => {
      try {
        return { name, bytes: (await stat(path.join(dir, name))).size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }),
  );
  return tallyHints(files.filter((f) => f !== undefined));
}
