// Liveness of the peers of a Cassandra node, judged as its own failure
// detector judges them: by the gossip heartbeat. Each node bumps its heartbeat
// version every gossip round (1 s) and its peers pass it on; a peer whose
// heartbeat has not advanced in this node's view for a while is not being
// heard. Cassandra's detector (phi accrual, phi_convict_threshold 8) convicts
// after about 8 / log10(e) ≈ 18.4 mean intervals of silence, ≈ 18 s with 1 s
// rounds; the default window here is 20 s, a little longer, so the pilot never
// calls a peer dead before Cassandra itself would.

/** Default window: see above and docs/cassandra.md ("The pilot"). */
export const LIVENESS_WINDOW_MS = 20_000;

export interface HeartbeatSample {
  hostId: string;
  /** Gossip generation of the peer (its start); a new one is a restart, so a heartbeat that advanced. */
  generation: number;
  /** Heartbeat version in this node's view. */
  heartbeat: number;
}

interface Seen {
  generation: number;
  heartbeat: number;
  /** When the heartbeat was first seen at this value (or the peer first seen). */
  since: number;
  /** The heartbeat has been seen to advance at least once. */
  advanced: boolean;
}

/**
 * Per peer: its last heartbeat (generation, version) and when it last moved.
 * `alive` is true when it advanced within the window, false when it has not
 * for a whole window, undefined while that is not known yet (seen once, less
 * than a window ago). Pure bookkeeping: the caller passes the time.
 */
export class HeartbeatLiveness {
  private readonly seen = new Map<string, Seen>();
  readonly windowMs: number;

  constructor(windowMs = LIVENESS_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Takes one read of every peer's heartbeat; peers not in it are forgotten. Returns alive per host id (absent: unknown). */
  observe(samples: readonly HeartbeatSample[], now: number): Map<string, boolean> {
    const out = new Map<string, boolean>();
    const present = new Set<string>();
    for (const s of samples) {
      present.add(s.hostId);
      const prev = this.seen.get(s.hostId);
      let cur: Seen;
      if (!prev) cur = { generation: s.generation, heartbeat: s.heartbeat, since: now, advanced: false };
      else if (s.generation > prev.generation || (s.generation === prev.generation && s.heartbeat > prev.heartbeat))
        cur = { generation: s.generation, heartbeat: s.heartbeat, since: now, advanced: true };
      else cur = prev; // the same, or older gossip (never moves the clock back)
      this.seen.set(s.hostId, cur);
      const silent = now - cur.since;
      if (silent >= this.windowMs) out.set(s.hostId, false);
      else if (cur.advanced) out.set(s.hostId, true);
    }
    for (const id of [...this.seen.keys()]) if (!present.has(id)) this.seen.delete(id);
    return out;
  }
}
