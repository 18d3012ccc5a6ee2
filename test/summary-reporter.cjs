'use strict';
// Mocha's spec reporter, plus the plain closing line CI reads: "N passed, N failed".
const Mocha = require('mocha');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      const skipped = s.pending ? `, ${s.pending} skipped` : '';
      process.stdout.write(`\n${s.passes} passed, ${s.failures} failed${skipped}\n`);
      // Several runs in one CI job add up their counts here, for one closing total.
      if (process.env.STS_PILOT_SUMMARY_FILE) {
        require('node:fs').appendFileSync(process.env.STS_PILOT_SUMMARY_FILE, `${s.passes} ${s.failures} ${s.pending}\n`);
      }
    });
  }
}

module.exports = SpecWithSummary;
