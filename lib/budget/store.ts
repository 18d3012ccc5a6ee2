import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import { BUDGET_LABEL, BUDGET_RECORD_ANNOTATION, type BudgetRecord, parseRecord } from './record.ts';

export interface ReadBudget {
  record: BudgetRecord;
  /** undefined: no Lease yet (a write creates it). */
  resourceVersion: string | undefined;
}

/**
 * The budget Leases, read and written whole, every write guarded by the
 * resourceVersion it read: two StatefulSets taking the last slot at once, one
 * of them gets a conflict and reads again.
 */
export class BudgetStore {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;

  constructor(o: { api: CoordinationV1Api; namespace: string }) {
    this.api = o.api;
    this.namespace = o.namespace;
  }

  async read(name: string, cluster: string): Promise<ReadBudget> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace: this.namespace });
    } catch (err) {
      if (statusCode(err) === 404) return { record: { cluster, holders: [] }, resourceVersion: undefined };
      throw err;
    }
    const parsed = parseRecord(lease.metadata?.annotations?.[BUDGET_RECORD_ANNOTATION], cluster);
    if (!parsed.ok) throw new Error(`Lease ${this.namespace}/${name}: ${parsed.error}`);
    return { record: parsed.record, resourceVersion: lease.metadata?.resourceVersion };
  }

  /** 'conflict': someone wrote it since it was read (or created it meanwhile): read again. */
  async write(name: string, hook: string, record: BudgetRecord, resourceVersion: string | undefined): Promise<'written' | 'conflict'> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace: this.namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
        labels: { [BUDGET_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'sts-pilot' },
        annotations: { [BUDGET_RECORD_ANNOTATION]: JSON.stringify(record), 'sts-pilot.io/hook': hook },
      },
      spec: {
        // For people reading the Lease: who is away now.
        holderIdentity: record.holders.map((h) => `${h.statefulSet}/${h.pod}`).join(',').slice(0, 1000) || undefined,
      },
    };
    try {
      if (resourceVersion === undefined) await this.api.createNamespacedLease({ namespace: this.namespace, body });
      else await this.api.replaceNamespacedLease({ name, namespace: this.namespace, body });
      return 'written';
    } catch (err) {
      const code = statusCode(err);
      if (code === 409) return 'conflict';
      throw new Error(`writing the budget Lease ${this.namespace}/${name}: ${describeError(err, 200)}`);
    }
  }
}
