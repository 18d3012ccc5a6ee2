import { AppsV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parseFlags, StatefulSetName, UndoFlags } from '../../lib/cli/flags.ts';
import { CliError, contextNamespace, readStatefulSet } from '../../lib/cli/kube.ts';
import { undoPlan } from '../../lib/cli/undo.ts';
import { statusCode } from '../../lib/errors.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { FIELD_MANAGER } from '../../lib/names.ts';
import { action, kubeFlags } from './common.ts';

export function registerUndo(program: Command): void {
  kubeFlags(
    program
      .command('undo')
      .argument('<name>', 'the StatefulSet')
      .description('roll back: the template of the revision the rollout came from, with the partition held, so every pod goes back through the hook'),
  )
    .option('--to-revision <n>', 'the ControllerRevision number to go back to (default: where the rollout came from, else the one before)')
    .action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(UndoFlags, cmd.opts());
        const name = parseFlags(StatefulSetName, rawName, 'NAME');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const ns = f.namespace ?? contextNamespace(kc);
        const apps = kc.makeApiClient(AppsV1Api);
        // Read, decide, write guarded by the resourceVersion read; if anyone wrote in between, again.
        for (let attempt = 1; ; attempt++) {
          const sts = await readStatefulSet(kc, ns, name);
          const revisions = (await apps.listNamespacedControllerRevision({ namespace: ns })).items;
          const plan = undoPlan(sts, revisions, { labelKey: f.labelKey, toRevision: f.toRevision });
          if (!plan.ok) throw new CliError(plan.reason);
          try {
            await apps.patchNamespacedStatefulSet(
              { name, namespace: ns, body: plan.patch, fieldManager: `${FIELD_MANAGER}-cli` },
              setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
            );
            console.log(plan.lines.join('\n'));
            return;
          } catch (err) {
            // 422: the resourceVersion test failed (someone wrote in between).
            if ((statusCode(err) !== 422 && statusCode(err) !== 409) || attempt >= 5) throw err;
          }
        }
      }),
    );
}
