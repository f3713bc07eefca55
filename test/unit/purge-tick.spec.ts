import { describe, expect, it } from '@jest/globals';
import { CronJob } from 'cron';
import { scheduledInstant } from '../../src/session/purge/session-purge.service.js';

const job = (cronTime: string, timeZone?: string) =>
  CronJob.from({ cronTime, onTick: () => undefined, start: false, ...(timeZone ? { timeZone } : {}) });
const at = (iso: string) => new Date(iso).toISOString();

describe('scheduledInstant: the tick a cron firing was due for, the same on every instance', () => {
  it.each([
    ['*/5 * * * *', '2026-12-02T00:05:00.004Z', '2026-12-02T00:05:00.000Z'], // on time, a few ms late as timers are
    ['*/5 * * * *', '2026-12-02T00:05:00.000Z', '2026-12-02T00:05:00.000Z'],
    ['*/5 * * * *', '2026-12-02T00:07:13.500Z', '2026-12-02T00:05:00.000Z'], // a timer blocked for minutes
    ['*/2 * * * * *', '2026-12-02T00:00:03.999Z', '2026-12-02T00:00:02.000Z'], // late across a second boundary
    ['*/2 * * * * *', '2026-12-02T00:00:04.000Z', '2026-12-02T00:00:04.000Z'],
    ['30 */2 * * * *', '2026-12-02T00:02:30.250Z', '2026-12-02T00:02:30.000Z'],
  ])('%s fired at %s was due at %s', (cron, firedAt, due) => {
    expect(scheduledInstant(job(cron), new Date(firedAt)).toISOString()).toBe(at(due));
  });

  it("follows the job's time zone", () => {
    // 03:00 in Paris is 02:00 UTC in December.
    expect(scheduledInstant(job('0 3 * * *', 'Europe/Paris'), new Date('2026-12-02T02:00:00.010Z')).toISOString()).toBe(
      '2026-12-02T02:00:00.000Z',
    );
  });
});
