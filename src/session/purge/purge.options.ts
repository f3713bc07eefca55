import { validateCronExpression } from 'cron';
import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

const cronError = (v: unknown) => (typeof v === 'string' ? validateCronExpression(v).error?.message : 'not a string');

export class SessionPurgeOptions {
  /** false: no scheduled job (`SessionPurgeService.runOnce()` and `npm run purge` still work). */
  @is.Bool() enabled?: boolean;
  /** When the job runs, in cron syntax (an optional leading seconds field). */
  @is.Check((v) => !cronError(v), (v) => `must be a cron expression such as '0 3 * * *' (${cronError(v)})`)
  cron?: string;
  /** Rows deleted per batch; each batch is one short transaction. */
  @is.Int(1, 100_000) batchSize?: number;
  /**
   * Share of the time a run spends in batches, so request traffic, autovacuum and replicas keep up
   * with a large backlog: after a batch that took t, the run pauses t × (1 − dutyCycle) / dutyCycle.
   */
  @is.Fraction(0.001, 1) dutyCycle?: number;
  /** The purge drops each weekly partition of the audit log whose whole week is older than this; false keeps them forever. */
  @is.Dur({ min: 1, or: false }) auditRetention?: Duration | false;
}
