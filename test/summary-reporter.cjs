'use strict';
// Mocha's spec reporter, plus the plain closing line CI reads: "N passed, N failed".
// Before it, the slowest test files with their wall time: the CI budget is spent
// file by file, and this is where to look when it grows.
const Mocha = require('mocha');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

const SLOWEST = 12;

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options);
    // A file's time: from its first top-level suite's start to its last one's end.
    const files = new Map();
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (!suite.file || suite.parent?.root !== true) return;
      const f = files.get(suite.file) ?? { start: Date.now(), end: Date.now() };
      files.set(suite.file, f);
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      const f = suite.file && suite.parent?.root === true ? files.get(suite.file) : undefined;
      if (f) f.end = Date.now();
    });
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      if (files.size > 1) {
        const rows = [...files].map(([file, f]) => ({ file: require('node:path').relative(process.cwd(), file), s: (f.end - f.start) / 1000 }));
        rows.sort((a, b) => b.s - a.s);
        process.stdout.write(`\nslowest test files (of ${rows.length}):\n`);
        for (const r of rows.slice(0, SLOWEST)) process.stdout.write(`  ${r.s.toFixed(0).padStart(5)} s  ${r.file}\n`);
      }
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
