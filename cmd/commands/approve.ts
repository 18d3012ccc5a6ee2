import type { Command } from 'commander';
import { APPROVE_ANNOTATION, approvalValue, MANUAL_HOOK, removalApprovalValue } from '../../hooks/manual/index.ts';
import { approvalTarget, overrideTarget } from '../../lib/cli/approve.ts';
import { ApproveFlags, parseFlags, StatefulSetName } from '../../lib/cli/flags.ts';
import { CliError, contextNamespace, readOwnedPods, readStatefulSet } from '../../lib/cli/kube.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { action, guardedPatch, hookProblem, kubeFlags } from './common.ts';

export function registerApprove(program: Command): void {
  kubeFlags(
    program
      .command('approve')
      .argument('<name>', 'a StatefulSet that uses the manual hook (or any, with --override)')
      .description('approve the step the manual hook is waiting for: the next pod (or the end) at the update revision; with --override, let one pod through without its hook, audited'),
  )
    .option('--pod <pod>', 'approve only if this pod (or "end") is the step waiting; refuse if the rollout has moved on. With --override: this stale pod, once it is next')
    .option('--override', 'let one exact pod at the update revision through without the hook, once (recorded with your user name as a Warning Event)')
    .option('--reason <text>', 'why the hook is bypassed (required with --override)')
    .action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(ApproveFlags, cmd.opts());
        const name = parseFlags(StatefulSetName, rawName, 'NAME');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const ns = f.namespace ?? contextNamespace(kc);
        const lines = await guardedPatch(
          kc,
          async () => {
            const sts = await readStatefulSet(kc, ns, name);
            // Pods after the StatefulSet: a pod that changed in between only makes the plan wait,
            // and a StatefulSet that changed makes the guarded write fail and this run again.
            return { sts, pods: await readOwnedPods(kc, sts) };
          },
          ({ sts, pods }) => {
            const id = `${ns}/${name}`;
            const item = { sts, pods, hookProblem: hookProblem(f.labelKey)(sts) };
            if (f.override) {
              const t = overrideTarget(item, { labelKey: f.labelKey, now: Date.now(), pod: f.pod, reason: f.reason ?? '' });
              if (!t.ok) throw new CliError(t.reason);
              return {
                // The API server stamps sts-pilot.io/override-by with who wrote this (manifests/admission-gate.yaml).
                patch: { metadata: { resourceVersion: sts.metadata?.resourceVersion, annotations: { [t.annotation]: t.value } } },
                result: [`${id}: override written for ${t.step}; the controller lets it through without the hook, once, and records who did it`, `  wrote ${t.annotation}=${t.value}`],
              };
            }
            const target = approvalTarget(item, { labelKey: f.labelKey, hookName: MANUAL_HOOK, now: Date.now(), pod: f.pod });
            if (!target.ok) throw new CliError(target.reason);
            const value = target.removal ? removalApprovalValue(target.removal.pod, target.removal.uid) : approvalValue(target.next, target.revision);
            if (sts.metadata?.annotations?.[APPROVE_ANNOTATION] === value) {
              return {
                patch: undefined,
                result: [`${id}: ${target.step}${target.removal ? '' : ` to revision ${target.revision}`} is already approved (${APPROVE_ANNOTATION}=${value}); the controller moves it on its next reconcile`],
              };
            }
            return {
              patch: { metadata: { resourceVersion: sts.metadata?.resourceVersion, annotations: { [APPROVE_ANNOTATION]: value } } },
              result: [`${id}: approved ${target.step}${target.removal ? '' : ` to revision ${target.revision}`}`, `  wrote ${APPROVE_ANNOTATION}=${value}`],
            };
          },
        );
        console.log(lines.join('\n'));
      }),
    );
}
