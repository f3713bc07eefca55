/** What one purge run did. Returned by `runOnce()` and logged as one line. */
export interface PurgeResult {
  sessionsDeleted: number;
  /** Audit rows past the retention: those of the dropped partitions and those deleted from the DEFAULT one. */
  auditRowsDeleted: number;
  /** Weekly partitions of the audit log created (this week and the next, and weeks found in the DEFAULT partition). */
  auditPartitionsCreated: number;
  /** Weekly partitions dropped because their whole week is older than the retention. */
  auditPartitionsDropped: number;
  /**
   * Rows moved out of the DEFAULT partition into new partitions; present only when some
   * were: audit rows reached DEFAULT because no run had made their week's partition in time.
   */
  auditRowsMoved?: number;
  /**
   * Audit rows older than `privacy.personalDataRetention` whose IP address, user agent and
   * personal details the run cleared (they stay, without who they came from).
   */
  auditRowsCleared: number;
  /** Batches that deleted or cleared at least one row; each is its own short transaction. */
  batches: number;
  durationMs: number;
  /**
   * The run did nothing: 'locked' another instance is purging, 'running' this instance
   * already is, 'shutdown' the application is stopping, 'claimed' another instance already
   * ran (or is running) this scheduled tick.
   */
  skipped?: 'locked' | 'running' | 'shutdown' | 'claimed';
  /** Shutdown stopped the run between two batches; the next run picks up the rest. */
  interrupted?: true;
  /**
   * The scheduled instant (ISO, whole second) of the cron tick this run was for: the key of its
   * row in session_purge_runs. Absent for `runOnce()` by hand, which claims no tick.
   */
  tick?: string;
}

/** The last purge run of this instance that ended (for health checks). */
export interface PurgeRunStatus {
  finishedAt: Date;
  /** What it did; absent when it failed. */
  result?: PurgeResult;
  /** Why it failed; absent when it did not. */
  error?: string;
}

/** The counts of a run that did nothing (yet). */
export const NOTHING_PURGED = {
  sessionsDeleted: 0,
  auditRowsDeleted: 0,
  auditPartitionsCreated: 0,
  auditPartitionsDropped: 0,
  auditRowsCleared: 0,
  batches: 0,
} as const;
