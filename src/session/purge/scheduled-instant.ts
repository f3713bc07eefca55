import type { CronJob } from 'cron';

/**
 * The instant a firing of `job` was due: the latest occurrence of its cron at or before the
 * moment it fired (cron fires at an occurrence or a little after it, never before), to the
 * second. Every instance on the same cron expression computes the same instant for the same
 * tick, however late its timer fired.
 */
export function scheduledInstant(job: CronJob, firedAt: Date = job.lastDate() ?? new Date()): Date {
  const zone = job.nextDate().zone;
  const fired = Math.floor(firedAt.getTime() / 1_000) * 1_000;
  // The first occurrence strictly after t (cron only has that direction).
  const after = (t: number) => job.cronTime.getNextDateFrom(new Date(t), zone).toMillis();
  // Look back 1 s, 2 s, 4 s, ... until an occurrence falls at or before the firing, then step
  // forward to the last such one: a few calls however late the timer was.
  let back = 1_000;
  while (after(fired - back) > fired) {
    if (back > MAX_LATENESS_MS) return new Date(fired);
    back *= 2;
  }
  let due = after(fired - back);
  for (let next = after(due); next <= fired; next = after(next)) due = next;
  return new Date(due);
}

/** How far back scheduledInstant looks for the occurrence a late timer fired for. */
const MAX_LATENESS_MS = 86_400_000;
