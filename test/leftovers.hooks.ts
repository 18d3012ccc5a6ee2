// Root hook (.mocharc.json "require"): at the end of the run, nothing a
// PilotProcess started for the test application (test/pilot/app.ts) may still
// run; the application runs in a session of its own, so a pilot killed alone
// leaves it running for ever. Leftovers are killed and reported as a failure
// that names them. Only this run's processes are looked at (test/pilot/leftovers.ts).
import { reapLeftovers } from './pilot/leftovers.ts';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    const left = await reapLeftovers();
    if (left.length > 0) {
      throw new Error(`${left.length} process(es) of test/pilot/app.ts pilots outlived their tests (killed now); the test that starts one must stop it:\n  ${left.join('\n  ')}`);
    }
  },
};
