import type { Command } from 'commander';
import { registerApprove } from './approve.ts';
import { registerCopyPilot } from './copy-pilot.ts';
import { registerHooks } from './hooks.ts';
import { registerPause } from './pause.ts';
import { registerStatus } from './status.ts';
import { registerUndo } from './undo.ts';
import { registerWait } from './wait.ts';

/** The commands for people: see and steer rollouts (docs/cli.md). */
export function registerCliCommands(program: Command): void {
  registerStatus(program);
  registerWait(program);
  registerPause(program);
  registerApprove(program);
  registerUndo(program);
  registerHooks(program);
  registerCopyPilot(program);
}
