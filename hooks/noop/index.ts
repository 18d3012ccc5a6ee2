import { z } from 'zod';
import { defineHook } from '../../lib/hook.ts';

/**
 * Approves every step at once. The controller itself already orders the pods and
 * waits for each to be Ready (and available for minReadySeconds) before the next.
 */
export const noopHook = defineHook({
  name: 'noop',
  description: 'ordered, readiness-gated rollout: approves every step and every removal',
  options: z.strictObject({}),
  objects: 'cached',
  async podUpdateTransition() {},
  // Removals too, one at a time, after every other pod is Ready: the controller's own order, said explicitly.
  async podRemoval() {},
  async podRemoved() {},
});
