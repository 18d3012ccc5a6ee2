import { type CassandraView, departed, type NodeRef, type NodeView, nodeName, nodeOf, type PilotReport } from './view.ts';

// Rule "hints-delivered": the writes the node moved last missed while it was
// away (hints held by the other nodes) are delivered before a second replica
// goes. Read from the nodes' own hints directories through their Pilots when
// every other node has a fresh one read late enough; otherwise by time
// (hints-settle), as without pilots. docs/cassandra.md, "hints-delivered".

/**
 * How long after the moved node's start (its gossip generation, its own clock)
 * a holder's Pilot must have read its hints directory for "no file for it" to
 * mean "nothing left to deliver". Cassandra 5.0.6 (org.apache.cassandra.hints.HintsService):
 * - 10 s for the node's gossip to start and reach the holder, whose failure
 *   detector then marks it alive and stops writing hints for it (it starts
 *   gossiping right after it takes its generation), with room for the two
 *   nodes' clocks;
 * - 10 s `hints_flush_period` (Config default "10s"): a hint written just
 *   before sits in the holder's buffer pool that long before its file shows
 *   (HintsService's constructor schedules writeExecutor.flushBufferPool every
 *   flush period);
 * - 10 s: the dispatch trigger (HintsService.startDispatch schedules
 *   HintsDispatchTrigger every 10 s; it closes a store's writer and dispatches
 *   its files once the target is alive), so that a file seen is one its holder
 *   has had its turn to send.
 */
export const HINTS_READ_DELAY_MS = 30_000;

export type Hold = { reason: string; routine?: true };

type Reading = { ok: true } | { ok: false; why: string } | { hold: Hold };

const who = (r: PilotReport, view: CassandraView): string => {
  const n = view.nodes.find((x) => x.hostId === r.hostId);
  return `${n ? nodeName(n) : r.hostId} (Pilot of ${r.pod})`;
};

/**
 * The moved node's hints, as the other nodes' Pilots list them: a hold when one
 * lists a file for it; ok when every other node of the ring has a fresh Pilot
 * that knows its hints directory, read at least HINTS_READ_DELAY_MS after the
 * node's start, that sees it alive and NORMAL, and lists no file for it;
 * otherwise why the read does not settle it.
 */
export function hintsRead(view: CassandraView, moved: NodeView): Reading {
  const reports = view.pilots ?? [];
  const holding = reports.flatMap((r) => (r.hints ?? []).filter((h) => h.hostId === moved.hostId && h.files > 0).map((h) => ({ r, files: h.files })));
  if (holding.length > 0) {
    return {
      hold: {
        reason: `${holding.map(({ r, files }) => `${who(r, view)} holds ${files} hint file(s)`).join(', ')} for ${nodeName(moved)}: waiting for their delivery (the holder sends them once it sees the node up, every 10 s)`,
        routine: true,
      },
    };
  }
  if (moved.startedAt === undefined) return { ok: false, why: `the start of ${nodeName(moved)} (its gossip generation) is unknown` };
  const since = moved.startedAt + HINTS_READ_DELAY_MS;
  for (const n of view.nodes) {
    if (n.hostId === moved.hostId || departed(n.status)) continue;
    const mine = reports.filter((r) => r.hostId === n.hostId);
    if (mine.length === 0) return { ok: false, why: `no fresh Pilot reports ${nodeName(n)}` };
    for (const r of mine) {
      if (!r.hints) return { ok: false, why: `the Pilot of ${r.pod} does not know its hints directory` };
      if (r.readAfter < since) return { ok: false, why: `the Pilot of ${r.pod} may have read its hints less than ${HINTS_READ_DELAY_MS / 1000} s after ${nodeName(moved)} started` };
      const peer = r.peers.find((q) => q.hostId === moved.hostId);
      if (peer?.alive !== true || peer.status.split(',')[0]?.toUpperCase() !== 'NORMAL') {
        return { ok: false, why: `${who(r, view)} does not see ${nodeName(moved)} alive and NORMAL yet` };
      }
    }
  }
  return { ok: true };
}

/**
 * Rule "hints-delivered": no node holds hints for the node moved last. The
 * driver's read (system_views.pending_hints, nodetool listpendinghints) lists
 * a holder's file only once its writer is closed, which the holder does when
 * it starts the delivery: measured on 5.0.6, a file written while the node is
 * down is not listed. The Pilots read the hints directories themselves, files
 * still being written included: when every other node's Pilot settles it
 * (hintsRead), the rule passes on that read; otherwise it also waits until the
 * node has run `settleMs` (hints-settle), saying why the Pilots did not settle it.
 */
export function hintsDelivered(view: CassandraView, prev: NodeRef, settleMs = 0, now = Date.now()): Hold | undefined {
  const n = nodeOf(view, prev);
  if (!n) return undefined;
  const pending = view.hints.filter((h) => h.forHostId === n.hostId && h.files > 0);
  if (pending.length > 0) {
    return {
      reason: `${pending.map((h) => `${h.on} holds ${h.files} hint file(s)`).join(', ')} for ${nodeName(n)}: waiting for their delivery (nodetool listpendinghints)`,
      routine: true,
    };
  }
  const read = hintsRead(view, n);
  if ('hold' in read) return read.hold;
  if (read.ok) return undefined;
  if (n.startedAt !== undefined && now - n.startedAt < settleMs) {
    const s = Math.ceil((settleMs - (now - n.startedAt)) / 1000);
    return {
      reason:
        `${nodeName(n)} started ${Math.floor((now - n.startedAt) / 1000)} s ago: the others list their hints for it only once they start delivering them, so the step waits ${s} s more ` +
        `(cassandra.sts-pilot.io/hints-settle; not read from the Pilots: ${read.why})`,
      routine: true,
    };
  }
  return undefined;
}
