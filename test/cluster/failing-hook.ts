// Loaded with `node --import` into a controller under test: the noop hook throws an
// ordinary error (not HookNotReady: a broken hook, not one saying "not yet") for a
// StatefulSet annotated test.sts-pilot.io/fail-hook: "true". Every shipped hook turns
// its failures into HookNotReady, so the halt policy needs this fault to be proven.
import { noopHook } from '../../hooks/noop/index.ts';

const approve = noopHook.podUpdateTransition.bind(noopHook);
(noopHook as { podUpdateTransition: typeof noopHook.podUpdateTransition }).podUpdateTransition = async (prev, next, ctx) => {
  if (ctx.statefulSet.metadata?.annotations?.['test.sts-pilot.io/fail-hook'] === 'true') throw new Error('injected fault: the hook is broken');
  return approve(prev, next, ctx);
};
