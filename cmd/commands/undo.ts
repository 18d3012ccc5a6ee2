import { AppsV1Api } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parseFlags, StatefulSetName, UndoFlags } from '../../lib/cli/flags.ts';
import { contextNamespace, readStatefulSet } from '../../lib/cli/kube.ts';
import { undoPlan } from '../../lib/cli/undo.ts';
import { listControllerRevisions } from '../../lib/kube/controller-revisions.ts';
import { statusCode } from '../../lib/errors.ts';
import { isFailedTest, jsonPatchOptions } from '../../lib/kube/guarded-patch.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { FIELD_MANAGER } from '../../lib/names.ts';
import { action, kubeFlags } from './common.ts';

export function registerUndo(program: Command): void {
  kubeFlags(
    program
      .command('undo')
      .argument('<name>', 'the StatefulSet')
      .description(
        'go back to an earlier pod template (what `kubectl rollout undo` does), with the partition held at replicas in the same write: ' +
          'every pod then moves back through the hook, highest first, also on clusters without the admission policies',
      ),
  )
    .option('--to-revision <n>', 'the ControllerRevision number to go back to (default: the one before the newest)')
    .action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(UndoFlags, cmd.opts());
        const name = parseFlags(StatefulSetName, rawName, 'NAME');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const ns = f.namespace ?? contextNamespace(kc);
        const apps = kc.makeApiClient(AppsV1Api);
        for (let attempt = 1; ; attempt++) {
          const sts = await readStatefulSet(kc, ns, name);
          const revisions = await listControllerRevisions(apps, ns);
          const plan = undoPlan(sts, revisions, f.toRevision);
          try {
            await apps.patchNamespacedStatefulSet({ name, namespace: ns, body: plan.patch, fieldManager: `${FIELD_MANAGER}-cli` }, jsonPatchOptions());
          } catch (err) {
            // Someone wrote in between: read and decide again.
            if (attempt < 5 && statusCode(err) === 422 && isFailedTest(err)) continue;
            throw err;
          }
          const held = plan.partition === undefined ? '' : `; partition held at ${plan.partition} in the same write`;
          console.log(`${ns}/${name}: template of revision ${plan.revision} (${plan.revisionName}) restored${held}`);
          console.log(`  sts-pilot now moves each pod back through its hook; follow it with "sts-pilot status ${name} -n ${ns} --watch"`);
          return;
        }
      }),
    );
}
