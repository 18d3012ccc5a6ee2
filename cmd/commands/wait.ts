import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { parseFlags, StatefulSetName, WaitFlags } from '../../lib/cli/flags.ts';
import { CliError, contextNamespace } from '../../lib/cli/kube.ts';
import { waitForRollouts } from '../../lib/cli/wait-watch.ts';
import { loadKubeConfig } from '../../lib/kube/config.ts';
import { action, kubeFlags } from './common.ts';

export function registerWait(program: Command): void {
  kubeFlags(
    program
      .command('wait')
      .argument('[name]', 'the StatefulSet (or -l SELECTOR, or --all)')
      .description('block until the rollout the current template asked for has finished; exit 1 with the reason when it is halted, paused, held past --timeout or replaced (docs/cli.md)'),
  )
    .option('-l, --selector <selector>', 'every managed StatefulSet matching this label selector')
    .option('--all', 'every managed StatefulSet of the namespace')
    .option('--timeout <duration>', 'give up after this long (e.g. 600, 90s, 10m, 1h30m); 0: no limit', '0')
    .action(
      action(async (rawName: unknown, _opts: unknown, cmd: Command) => {
        const f = parseFlags(WaitFlags, cmd.opts());
        const name = rawName === undefined ? undefined : parseFlags(StatefulSetName, rawName, 'NAME');
        const ways = [name !== undefined, f.selector !== undefined, f.all].filter(Boolean).length;
        if (ways !== 1) throw new InvalidArgumentError('give exactly one of NAME, -l/--selector or --all');
        const kc = loadKubeConfig(f.kubeconfig, f.context);
        const namespace = f.namespace ?? contextNamespace(kc);
        const result = await waitForRollouts({ kc, namespace, name, selector: f.selector, labelKey: f.labelKey, timeoutMs: f.timeout, out: (line) => process.stdout.write(`${line}\n`) });
        if (!result.ok) throw new CliError(result.failures.join('\nsts-pilot: '));
      }),
    );
}
