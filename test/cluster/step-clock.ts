// Loaded with `node --import` into a controller under test: after STS_PILOT_STEP_CLOCK_AFTER_MS,
// the wall clock (Date.now and new Date()) jumps by STS_PILOT_STEP_CLOCK_BY_MS, as an NTP step
// does. The monotonic clock (performance.now) does not move.
const after = Number(process.env.STS_PILOT_STEP_CLOCK_AFTER_MS ?? 0);
const by = Number(process.env.STS_PILOT_STEP_CLOCK_BY_MS ?? 0);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
const start = realNow();
const offset = (): number => (realNow() - start >= after ? by : 0);
class SteppedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(realNow() + offset());
    else super(...(args as [string]));
  }
  static override now(): number {
    return realNow() + offset();
  }
}
globalThis.Date = SteppedDate as DateConstructor;
