import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * Objects of an informer's cache grouped by their controller's uid, so "the pods
 * of this StatefulSet" costs O(its pods), not a scan of the namespace on every
 * reconcile. Fed from the informer's callbacks, which see every change of the cache.
 */
export class OwnerIndex<T extends KubernetesObject> {
  private readonly byOwner = new Map<string, Map<string, T>>();
  /** Object key -> the owner uid it is filed under, to refile or remove it. */
  private readonly ownerOf = new Map<string, string>();

  onChange(obj: T, verb: 'add' | 'update' | 'delete'): void {
    const k = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    const before = this.ownerOf.get(k);
    if (before !== undefined) {
      const set = this.byOwner.get(before);
      set?.delete(k);
      if (set?.size === 0) this.byOwner.delete(before);
      this.ownerOf.delete(k);
    }
    if (verb === 'delete') return;
    const owner = obj.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
    if (!owner) return;
    let set = this.byOwner.get(owner);
    if (!set) this.byOwner.set(owner, (set = new Map()));
    set.set(k, obj);
    this.ownerOf.set(k, owner);
  }

  /** Every object whose controller has this uid. */
  of(ownerUid: string | undefined): T[] {
    if (!ownerUid) return [];
    const set = this.byOwner.get(ownerUid);
    return set ? [...set.values()] : [];
  }
}
