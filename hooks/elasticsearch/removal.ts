import type { NodeRef } from './node-ref.ts';
import type { Health } from './options.ts';
import type { ClusterView } from './view.ts';
import { type Decision, decideDrain, listOf, masterEligible, redReason, type StepContext } from './decide.ts';
import { encodeMarker } from './settings.ts';

// Scale-down (docs/elasticsearch.md, "Scale-down"): a node that leaves for good
// is drained of every shard copy (as the drain strategy does for a restart:
// the data has nowhere to come back to), and a master-eligible one is first
// taken out of the voting configuration, so that the masters left still form a
// quorum the moment it stops (ECK does both before it deletes a node's pod).
// Pure: what the hook read in, a decision out.

/** The path that adds one node to the voting configuration exclusions (Elasticsearch >= 7.8, OpenSearch). */
export const votingExclusionPath = (name: string, timeoutSeconds: number): string =>
  `/_cluster/voting_config_exclusions?node_names=${encodeURIComponent(name)}&timeout=${Math.max(1, timeoutSeconds)}s`;
/** Clears every voting configuration exclusion: the API has no per-node removal. */
export const CLEAR_VOTING_EXCLUSIONS = '/_cluster/voting_config_exclusions?wait_for_removal=false';

const hold = (reason: string): Decision => ({ kind: 'hold', reason });
const wait = (reason: string): Decision => ({ kind: 'hold', reason, routine: true });

/**
 * May `leaving`'s node go for good? In order: never while red; every other
 * node of the StatefulSet a member; a master-eligible node never the last one,
 * never while another voter is missing, and only once it is out of the voting
 * configuration (the hook records that exclusion as its own, then asks for it);
 * then its data drained, as for a drain step.
 */
export function decideRemoval(view: ClusterView, leaving: NodeRef, required: Health, step: StepContext & { timeoutSeconds?: number } = {}): Decision {
  if (view.health.status === 'red') return hold(redReason(view));
  const node = view.nodes.find((n) => n.name === leaving.name);
  if (node && masterEligible(node)) {
    const masters = view.nodes.filter((n) => n.id !== node.id && masterEligible(n));
    if (masters.length === 0) {
      return hold(`${leaving.name} is the last master-eligible node of the cluster: removing it would leave the cluster without a master; add a master-eligible node first`);
    }
    const ids = new Set(view.nodes.map((n) => n.id));
    const missing = (view.voters ?? []).filter((v) => v !== node.id && !ids.has(v));
    if (missing.length) {
      return hold(
        `${leaving.name} is master-eligible and ${missing.length === 1 ? 'a voting node is' : `${missing.length} voting nodes are`} not in the cluster (${listOf(missing)}): ` +
          `removing it now could lose the master quorum; waiting for ${missing.length === 1 ? 'it' : 'them'} to rejoin`,
      );
    }
    const excluded = (view.votingExclusions ?? []).some((x) => x.id === node.id || x.name === node.name);
    const claimed = view.marker.voting?.includes(node.name) ?? false;
    if (!claimed) {
      return {
        kind: 'write',
        write: { persistent: { [view.markerKey]: encodeMarker({ ...view.marker, voting: [...(view.marker.voting ?? []), node.name] }) }, transient: {} },
        why: `record the voting exclusion of ${node.name} as sts-pilot's before asking for it`,
      };
    }
    if (!excluded) {
      return { kind: 'request', method: 'POST', path: votingExclusionPath(node.name, Math.floor((step.timeoutSeconds ?? 10) / 2)), why: `exclude ${node.name} from the voting configuration` };
    }
    if ((view.voters ?? []).includes(node.id)) return wait(`waiting for the elected master to take ${node.name} out of the voting configuration`);
  }
  const drain = decideDrain(view, null, leaving, required, step);
  if (drain.kind === 'approve') return { ...drain, note: `${drain.note}${node && masterEligible(node) ? `; ${node.name} is out of the voting configuration` : ''}; it may leave` };
  return drain;
}

/**
 * After a removal: the pod is gone ('removed'), or stays because the scale-down
 * was withdrawn ('withdrawn'). Its node must have left the cluster (removed),
 * the hook's allocation exclusion goes (the drain's end: no exclusion of ours
 * left, health as required), and so does the voting exclusion it asked for.
 * That API clears every exclusion at once, so it is cleared only when no other
 * exclusion is of a node still in the cluster (someone else's removal in progress).
 */
export function decideRemovalCleanup(view: ClusterView, gone: NodeRef, outcome: 'removed' | 'withdrawn', required: Health, step: StepContext = {}): Decision {
  if (outcome === 'removed' && view.nodes.some((n) => n.name === gone.name)) {
    return wait(`pod ${gone.pod} is gone, but node ${gone.name} is still a member of the cluster: waiting for it to leave`);
  }
  const ours = view.marker.voting ?? [];
  if (ours.length > 0) {
    const exclusions = view.votingExclusions ?? [];
    const members = new Set(view.nodes.map((n) => n.name));
    const membersById = new Set(view.nodes.map((n) => n.id));
    const present = (x: { id?: string; name?: string }): boolean => (x.name !== undefined && members.has(x.name)) || (x.id !== undefined && membersById.has(x.id));
    const foreign = exclusions.filter((x) => !(x.name !== undefined && ours.includes(x.name)) && present(x));
    if (exclusions.length > 0) {
      if (foreign.length > 0) {
        const names = foreign.map((x) => x.name ?? x.id ?? '?');
        const stuck = exclusions.filter((x) => x.name !== undefined && ours.includes(x.name) && present(x));
        if (stuck.length === 0) {
          // Ours are of nodes that left: harmless to keep; the other exclusions are someone's removal in progress.
          return forget(view, `the voting exclusions left are of nodes gone and of ${listOf(names)}, still members (someone else's removal): left in place`);
        }
        return hold(
          `sts-pilot's voting exclusion of ${listOf(stuck.map((x) => x.name ?? '?'))} must go, but the API clears all exclusions at once, ` +
            `and ${listOf(names)} ${names.length === 1 ? 'is' : 'are'} excluded too and still in the cluster: clear them by hand (DELETE ${CLEAR_VOTING_EXCLUSIONS}) once that is safe`,
        );
      }
      return { kind: 'request', method: 'DELETE', path: CLEAR_VOTING_EXCLUSIONS, why: `clear the voting configuration exclusion of ${listOf(ours)}` };
    }
    return forget(view, `no voting exclusion is left`);
  }
  return decideDrain(view, null, null, required, step);
}

/** Drop the voting names from our marker (the exclusions themselves are gone or not ours to clear). */
function forget(view: ClusterView, why: string): Decision {
  const { voting: _gone, ...rest } = view.marker;
  return { kind: 'write', write: { persistent: { [view.markerKey]: encodeMarker(rest) }, transient: {} }, why: `${why}; forget sts-pilot's voting exclusions` };
}
