import type { CustomObjectsApi } from '@kubernetes/client-node';
import { statusCode } from '../errors.ts';
import { API_GROUP } from '../names.ts';
import { METRIC_CHECK_PLURAL } from './schema.ts';

/**
 * One MetricCheck, read when a step is checked (a GET per check per call; the
 * calls are seconds apart and a fresh read means an edit counts at once).
 * Undefined when there is none by that name.
 */
export async function readMetricCheck(api: CustomObjectsApi, namespace: string, name: string): Promise<unknown> {
  try {
    return await api.getNamespacedCustomObject({ group: API_GROUP, version: 'v1alpha1', namespace, plural: METRIC_CHECK_PLURAL, name });
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}
