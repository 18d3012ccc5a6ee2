import type { Command } from 'commander';
import { parseFlags, StatefulSetName, TargetFlags } from '../../lib/cli/flags.ts';
import { contextNamespace, readStatefulSet } from '../../lib/cli/kube.ts';
import { pauseChange } from '../../lib/cli/pause.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { action, guardedPatch, kubeFlags } from './common.ts';

export function registerPause(program: Command): void {
  for (const pause of [true, false]) {
    kubeFlags(
      program
        .command(pause ? 'pause' : 'resume')
        .argument('<name>', 'the StatefulSet')
        .description(
          pause
            ? 'stop sts-pilot from calling the hook or writing to a StatefulSet (annotation sts-pilot.io/paused: "true")'
            : 'let sts-pilot manage a paused StatefulSet again (removes sts-pilot.io/paused)',
        ),
    ).action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(TargetFlags, cmd.opts());
        const name = parseFlags(StatefulSetName, rawName, 'NAME');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const ns = f.namespace ?? contextNamespace(kc);
        const message = await guardedPatch(
          kc,
          async () => ({ sts: await readStatefulSet(kc, ns, name) }),
          ({ sts }) => {
            const change = pauseChange(sts, pause, f.labelKey);
            return { patch: change.patch, result: change.message };
          },
        );
        console.log(message);
      }),
    );
  }
}
