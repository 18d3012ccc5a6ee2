// The `sts-pilot pilot` command on its own, for the tests to run as a real
// process until cmd/sts-pilot.ts registers it (then the tests use that).
import { Command } from 'commander';
import { registerPilotCommand } from '../../cmd/pilot-command.ts';

const program = new Command('sts-pilot');
registerPilotCommand(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`sts-pilot: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
