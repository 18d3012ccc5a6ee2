import type { Command } from 'commander';
import { hooks } from '../../hooks/index.ts';
import { HooksFlags, parseFlags } from '../../lib/cli/flags.ts';
import { renderHooks } from '../../lib/cli/hooks.ts';
import { DEFAULT_LABEL_KEY } from '../../lib/names.ts';

export function registerHooks(program: Command): void {
  program
    .command('hooks')
    .description('list the registered hooks and the option annotations each one reads')
    .option('--label-key <key>', 'label that subscribes a StatefulSet (as given to the controller)', DEFAULT_LABEL_KEY)
    .action((_opts: unknown, cmd: Command) => {
      const f = parseFlags(HooksFlags, cmd.opts());
      console.log(renderHooks(hooks.values(), f.labelKey).join('\n'));
    });
}
