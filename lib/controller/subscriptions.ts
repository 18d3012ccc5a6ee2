import type { AppsV1Api } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { EventRecorder } from '../events.ts';
import type { Logger } from '../log.ts';

/**
 * Which subscribed StatefulSets the controller has seen, by uid, so that when
 * one leaves the label-selected watch it can tell "its label was removed" (say
 * so in an Event, and never touch it again) from "it was deleted" (nothing to
 * say), even when a StatefulSet of the same name was created again at once.
 */
export class Subscriptions {
  private readonly known = new Map<string, string>();
  private readonly apps: AppsV1Api;
  private readonly events: EventRecorder;
  private readonly log: Logger;
  private readonly labelKey: string;

  constructor(o: { apps: AppsV1Api; events: EventRecorder; log: Logger; labelKey: string }) {
    this.apps = o.apps;
    this.events = o.events;
    this.log = o.log;
    this.labelKey = o.labelKey;
  }

  /** The StatefulSet is subscribed with this uid. True when that is news: a new object, whose memories start empty. */
  seen(key: string, uid: string): boolean {
    if (this.known.get(key) === uid) return false;
    this.known.set(key, uid);
    return true;
  }

  /** It left the watch. Resolves when the Event (if any) is written; never throws. */
  async left(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const uid = this.known.get(key);
    if (uid === undefined) return;
    this.known.delete(key);
    this.events.forget(namespace, name);
    try {
      const sts = await this.apps.readNamespacedStatefulSet({ name, namespace });
      // Another object of that name (deleted and created again): the one we knew is gone.
      if (sts.metadata?.uid !== uid) return;
      if (sts.metadata?.labels?.[this.labelKey] !== undefined) return; // back in the watch already
      const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition;
      const msg = `label ${this.labelKey} removed: sts-pilot no longer manages this StatefulSet and leaves its partition at ${partition ?? 'unset'}`;
      this.log.info({ statefulSet: key, partition }, msg);
      await this.events.emit(sts, 'Normal', 'Unsubscribed', msg);
    } catch (err) {
      if (statusCode(err) !== 404) this.log.warn({ statefulSet: key, err: describeError(err) }, 'could not check a StatefulSet that left the watch');
    }
  }
}
