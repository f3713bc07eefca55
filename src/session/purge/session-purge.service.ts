import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { hostname } from 'node:os';
import { SessionEvents } from '../audit/session-events.js';
import { SessionMetrics } from '../metrics/session-metrics.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedPurgeOptions, ResolvedSessionOptions } from '../session.options.js';
import { NOTHING_PURGED, type PurgeResult, type PurgeRunStatus } from './purge-result.js';
import { PurgeStore } from './purge.store.js';
import { describe, PurgeWork } from './purge-work.js';
import { scheduledInstant } from './scheduled-instant.js';

export type { PurgeResult, PurgeRunStatus } from './purge-result.js';
export { scheduledInstant } from './scheduled-instant.js';

/** Name of the purge's job in the SchedulerRegistry. */
export const SESSION_PURGE_JOB = 'nest-pg-session:purge';

/**
 * Deletes expired sessions (each with a `purged` audit row, in the same statement) in small
 * batches, and keeps the audit log's weekly partitions (made a week ahead, dropped past the
 * retention). One instance at a time: the others skip instead of waiting (the lease row of
 * PurgeConnection). Scheduled with @nestjs/schedule from the `purge.cron` option, and each
 * scheduled tick runs on one instance only: the lease holder
 * claims the tick in session_purge_runs, and an instance whose tick fires after that skips it
 * (`skipped: 'claimed'`). `runOnce()` runs it by hand, under the lease but without a tick.
 */
@Injectable()
export class SessionPurgeService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(SessionPurgeService.name);
  private readonly options: ResolvedPurgeOptions;
  private readonly work: PurgeWork;
  private readonly scheduler: SchedulerRegistry;
  private readonly shutdown = new AbortController();
  /** Recorded with each tick this instance claims (session_purge_runs.instance). */
  private readonly instance = `${hostname()}:${process.pid}`;
  private current: Promise<PurgeResult> | undefined;
  private last: PurgeRunStatus | undefined;

  constructor(
    private readonly store: PurgeStore,
    @Inject(SESSION_OPTIONS) options: ResolvedSessionOptions,
    // The app's registry when it imports ScheduleModule.forRoot(), so the job can be seen and
    // paused there. Not imported by this module: each forRoot() is a module instance of its
    // own, and a second one would run every @Cron job of the app twice.
    @Optional() scheduler?: SchedulerRegistry,
    /** Receives the `purged` rows of each batch once it committed, while anyone observes them. */
    @Optional() private readonly events?: SessionEvents,
    @Optional() private readonly metrics?: SessionMetrics,
  ) {
    this.options = options.purge;
    this.scheduler = scheduler ?? new SchedulerRegistry();
    this.work = new PurgeWork(
      options.purge,
      options.privacy.personalDataRetentionMs,
      this.shutdown.signal,
      this.logger,
      events,
    );
  }

  onApplicationBootstrap(): void {
    if (!this.options.enabled) return;
    const job: CronJob = CronJob.from({
      cronTime: this.options.cron,
      onTick: async () => void (await this.tick(scheduledInstant(job))),
      start: true,
      waitForCompletion: true,
    });
    this.scheduler.addCronJob(SESSION_PURGE_JOB, job as CronJob<null, null>);
  }

  /**
   * Stops here rather than only in onApplicationShutdown: TypeORM closes the pool in its own
   * onApplicationShutdown, and a run must end (after its current batch) before that.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /**
   * The last run that ended on this instance, undefined before the first. A run skipped
   * because this instance was already purging or shutting down is not one.
   */
  get lastRun(): PurgeRunStatus | undefined {
    return this.last;
  }

  /**
   * One purge run. Resolves with what it did (also when another instance holds the lease:
   * `skipped: 'locked'`); rejects when the database fails (StoreUnavailableError when it
   * is unreachable). A batch is one statement, so a failure or a shutdown never leaves
   * half of one behind. By hand there is no scheduled tick: it claims none, writes no
   * session_purge_runs row, and runs even in a tick another instance has claimed.
   */
  async runOnce(): Promise<PurgeResult> {
    return this.execute();
  }

  /**
   * The scheduled run for the cron tick due at `tick`: a failure (database down) is one
   * warning, and the next tick tries again. Resolves with what it did, undefined when it failed.
   */
  private async tick(tick: Date): Promise<PurgeResult | undefined> {
    try {
      return await this.execute(tick);
    } catch (error) {
      // An upgrade that skipped the migration fails every tick the same way: say what to do.
      if (
        (error as { code?: unknown })?.code === '42P01' ||
        (error as { cause?: { code?: unknown } })?.cause?.code === '42P01'
      ) {
        this.logger.error(
          `purge run failed: a session table is missing; run the migrations (sessionMigrations, ` +
            `CreateSessionPurgeRuns1796169600000 added session_purge_runs, CreateSessionPurgeLease1796212800000 ` +
            `session_purge_lease): ${describe(error)}`,
        );
      } else {
        this.logger.warn(`purge run failed, the next tick tries again: ${describe(error)}`);
      }
      return undefined;
    }
  }

  /** One run, for a scheduled tick (claimed first) or, without one, by hand. */
  private async execute(tick?: Date): Promise<PurgeResult> {
    const started = performance.now();
    const skip = (skipped: PurgeResult['skipped']) =>
      this.report({
        ...NOTHING_PURGED,
        durationMs: elapsed(started),
        skipped,
        ...tickOf(tick),
      });
    if (this.shutdown.signal.aborted) return skip('shutdown');
    if (this.current) return skip('running');
    this.current = this.run(started, tick);
    try {
      return this.report(await this.current);
    } catch (error) {
      this.last = { finishedAt: new Date(), error: describe(error) };
      this.metrics?.purgeRun({ error });
      throw error;
    } finally {
      this.current = undefined;
    }
  }

  /**
   * Lock, then claim, in that order. The lock alone lets an instance whose tick fires after the
   * winner finished run the same tick again; the claim (one row per tick, first INSERT wins)
   * stops that. Claiming only once the lock is ours means an instance turned away by the lock
   * (a run still going, here or elsewhere, or a `runOnce()` by hand) claims nothing, so it never
   * takes a tick away from a later instance that could run it. The claim commits at once;
   * should the claimer die or lose the database before the end, its row keeps finished_at NULL
   * (or an error) as the evidence, the tick is not run again, and the next tick purges the rest.
   */
  private async run(started: number, tick?: Date): Promise<PurgeResult> {
    const result: PurgeResult = { ...NOTHING_PURGED, durationMs: 0, ...tickOf(tick) };
    const connection = await this.store.connect();
    try {
      const locked = await connection.tryLock();
      if (!locked) return { ...result, skipped: 'locked', durationMs: elapsed(started) };
      if (tick && !(await connection.claimTick(tick, this.instance)))
        return { ...result, skipped: 'claimed', durationMs: elapsed(started) };
      try {
        await this.work.purge(connection, result);
      } catch (error) {
        if (tick) await connection.finishTick(tick, { ...result, error: describe(error) }).catch(() => undefined);
        throw error;
      }
      if (tick)
        await connection.finishTick(tick, {
          ...result,
          error: result.interrupted ? 'interrupted by shutdown' : undefined,
        });
      result.durationMs = elapsed(started);
      return result;
    } finally {
      await connection.release();
    }
  }
  private async stop(): Promise<void> {
    this.shutdown.abort();
    if (this.scheduler.doesExist('cron', SESSION_PURGE_JOB)) this.scheduler.deleteCronJob(SESSION_PURGE_JOB);
    await this.current?.catch(() => undefined);
  }

  /** The run's one log line (a failed run's is the tick's warning). */
  private report(result: PurgeResult): PurgeResult {
    if (result.skipped !== 'running' && result.skipped !== 'shutdown') this.last = { finishedAt: new Date(), result };
    this.metrics?.purgeRun({ result });
    this.logger.log(`purge run ${JSON.stringify(result)}`);
    return result;
  }
}

function tickOf(tick: Date | undefined): Pick<PurgeResult, 'tick'> {
  return tick ? { tick: tick.toISOString() } : {};
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
