// Loaded with `node --import` into a controller under test: the wall clock (Date.now and
// new Date()) runs ahead by the number of milliseconds in $STS_PILOT_CLOCK_FILE, re-read
// every 50 ms, so a test moves the controller's time at will (a maintenance window opens
// and closes) without waiting for it. Timers and the monotonic clock do not move.
import { readFileSync } from 'node:fs';

const file = process.env.STS_PILOT_CLOCK_FILE ?? '';
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
let offset = 0;
const read = (): void => {
  try {
    const v = Number(readFileSync(file, 'utf8').trim());
    if (Number.isFinite(v)) offset = v;
  } catch {
    // No file yet: no offset.
  }
};
read();
setInterval(read, 50).unref();
class FileDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(realNow() + offset);
    else super(...(args as [string]));
  }
  static override now(): number {
    return realNow() + offset;
  }
}
globalThis.Date = FileDate as DateConstructor;
