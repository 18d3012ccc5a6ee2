/**
 * One writer per cluster at a time, within this process. Cluster settings have
 * no compare-and-set: two StatefulSets of one cluster (masters and data nodes)
 * rolling at once would each read the exclusion list, edit it and write it
 * back, and the later write would drop the earlier one's name or bring back a
 * name just removed (which then looks like a person's and stays for good). The
 * controller calls hooks only on its leader, so every read-decide-write of one
 * cluster goes through this queue, keyed by the cluster UUID.
 */
const tails = new Map<string, Promise<void>>();

export async function withClusterLock<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const before = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = before.then(() => mine);
  tails.set(key, tail);
  try {
    await Promise.race([
      before,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
    return await fn();
  } finally {
    release();
    // The last one out leaves no entry behind.
    if (tails.get(key) === tail) tails.delete(key);
  }
}

/** How many clusters have a writer or a queue now (for tests). */
export const lockedClusters = (): number => tails.size;
