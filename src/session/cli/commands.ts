import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';
import { userInfo } from 'node:os';
import pg from 'pg';
import { METRICS_SQL } from '../metrics/metrics.sql.js';
import { PurgeStore } from '../purge/purge.store.js';
import { SessionPurgeService, type PurgeResult } from '../purge/session-purge.service.js';
import { resolveSessionOptions, SessionOptionsError, type SessionModuleOptions } from '../session.options.js';
import { runSessionMigrations } from '../startup/run-migrations.js';
import { StoreUnavailableError } from '../store/pg-errors.js';
import { SessionStore } from '../store/session.store.js';
import { cannotReach, CliError, connect, EXIT, requireSchema } from './database.js';
import { printable } from '../printable.js';

/** Where a command writes its result (stdout) and what it tells the operator (stderr). */
export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * `migrate`: runs `sessionMigrations` (TypeORM records them in `migrationsTable`, 'migrations'
 * by default as in TypeORM, so an app with `migrationsRun` sees them as done), under the same
 * advisory lock as every other migration run.
 */
export async function migrate(url: URL, migrationsTable: string, io: CliOutput): Promise<number> {
  try {
    const ran = await runSessionMigrations(url.href, migrationsTable);
    io.out(ran.length === 0 ? 'session tables up to date' : `ran ${ran.join(', ')}`);
    return EXIT.ok;
  } catch (error) {
    throw cannotReach(url, error);
  }
}

/**
 * `purge`: one run of the in-app purge (same lock, so safe next to running apps; like
 * `runOnce()` it claims no scheduled tick). Exit 0 when it ran or was skipped because another
 * instance is purging, 1 when it failed. SIGINT/SIGTERM stop it after the current batch.
 */
export async function purge(
  url: URL,
  options: Pick<SessionModuleOptions, 'purge' | 'privacy'>,
  io: CliOutput,
  json: boolean,
): Promise<number> {
  let resolved;
  try {
    resolved = resolveSessionOptions({ ...options, purge: { ...options.purge, enabled: false } });
  } catch (error) {
    if (error instanceof SessionOptionsError) throw new CliError(error.message, EXIT.usage);
    throw error;
  }
  const pool = await connect(url);
  const service = new SessionPurgeService(new PurgeStore(pool), resolved);
  const stop = () => void service.onApplicationShutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await requireSchema(pool);
    const result: PurgeResult = await service.runOnce();
    io.out(
      json
        ? JSON.stringify(result)
        : result.skipped
          ? `purge skipped: ${result.skipped === 'locked' ? 'another instance is purging' : result.skipped}`
          : `purged ${result.sessionsDeleted} sessions and ${result.auditRowsDeleted} audit rows in ${result.durationMs} ms` +
            auditPartitionNote(result) +
            (result.interrupted ? ' (interrupted: the next run picks up the rest)' : ''),
    );
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CliError) throw error;
    const reason =
      error instanceof StoreUnavailableError ? `database unavailable: ${error.detail}` : (error as Error).message;
    throw new CliError(`purge failed: ${reason}`, EXIT.failed);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await pool.end();
  }
}

/** `sessions`: the number of live sessions, or with a user id, that user's live sessions (never tokens). */
export async function sessions(url: URL, userId: string | undefined, io: CliOutput, json: boolean): Promise<number> {
  return withStore(url, async (pool, store) => {
    if (userId === undefined) {
      const { rows } = await pool.query<{ n: number }>(METRICS_SQL.countActiveSessions.text);
      io.out(json ? JSON.stringify({ active: rows[0].n }) : `${rows[0].n} active sessions`);
      return EXIT.ok;
    }
    const list = await store.listForUser(userId);
    // IP and user agent came from clients: escaped, so no control sequence reaches the terminal.
    if (json)
      io.out(
        JSON.stringify(list.map(({ current: _current, ...summary }) => summary)).replace(
          /[\u007f-\u009f]/g,
          (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
        ),
      );
    else {
      io.out(`${list.length} active sessions of user ${JSON.stringify(userId)}`);
      for (const s of list)
        io.out(
          `${s.id}  created ${s.createdAt.toISOString()}  last seen ${s.lastSeenAt.toISOString()}  ` +
            `expires ${s.expiresAt.toISOString()}  ${printable(s.ip ?? '', 64)}  ${printable(s.userAgent ?? '', 256)}` +
            (s.impersonatedBy === undefined ? '' : `  impersonated by ${printable(s.impersonatedBy, 255)}`),
        );
    }
    return EXIT.ok;
  });
}

/**
 * `revoke --user <id>`: revokes every session of the user in one statement, audited as
 * `revoked` per session and one `revoked_all`, with reason 'admin' and the operator as actor.
 * Running instances drop them from their caches on the NOTIFY the statement sends.
 */
export async function revoke(
  url: URL,
  userId: string,
  actor: string | undefined,
  io: CliOutput,
  json: boolean,
): Promise<number> {
  const actorId = actor ?? defaultActor();
  return withStore(url, async (_pool, store) => {
    const count = await store.revokeAllForUser(userId, 'admin', { actorId });
    io.out(
      json
        ? JSON.stringify({ revoked: count, userId, actorId })
        : `revoked ${count} sessions of user ${JSON.stringify(userId)} (actor ${JSON.stringify(actorId)})`,
    );
    return EXIT.ok;
  });
}

/** The audit row's actor when --actor is not given: who ran the command. */
export function defaultActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export async function withStore(
  url: URL,
  work: (pool: pg.Pool, store: SessionStore) => Promise<number>,
): Promise<number> {
  const pool = await connect(url);
  try {
    await requireSchema(pool);
    return await work(pool, new SessionStore(pool));
  } catch (error) {
    if (error instanceof CliError) throw error;
    const reason =
      error instanceof StoreUnavailableError ? `database unavailable: ${error.detail}` : (error as Error).message;
    throw new CliError(reason, EXIT.failed);
  } finally {
    await pool.end();
  }
}

/** The library's own log lines go to stderr, so stdout holds only the command's result (--json stays parseable). */
class StderrLogger extends ConsoleLogger {
  protected override printMessages(
    messages: unknown[],
    context?: string,
    logLevel?: LogLevel,
    _stream?: 'stdout' | 'stderr',
    ...rest: [errorStack?: unknown, params?: Record<string, unknown>]
  ): void {
    super.printMessages(messages, context, logLevel, 'stderr', ...rest);
  }
}

/** purge keeps the library's log line ('purge run {...}'), as the in-app job logs it; the others warnings only. */
export function routeNestLogsToStderr(command: string): void {
  Logger.overrideLogger(
    new StderrLogger({ logLevels: command === 'purge' ? ['log', 'warn', 'error'] : ['warn', 'error'] }),
  );
}

/** What the run did to the audit log's weekly partitions, when it did anything. */
function auditPartitionNote(result: PurgeResult): string {
  const parts = [
    result.auditPartitionsDropped > 0 && `${result.auditPartitionsDropped} audit partitions dropped`,
    result.auditPartitionsCreated > 0 && `${result.auditPartitionsCreated} audit partitions created`,
    result.auditRowsMoved && `${result.auditRowsMoved} audit rows moved out of the default partition`,
    result.auditRowsCleared > 0 && `personal data cleared from ${result.auditRowsCleared} audit rows`,
  ].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
