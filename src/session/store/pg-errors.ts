import { Logger, ServiceUnavailableException } from '@nestjs/common';

/**
 * What a failed statement means, for everything that talks to PostgreSQL (session store,
 * purge, audit queries, health): unavailable (503, retry), the caller's bad data (400), or
 * anything else (500). Also how a failure is described in logs: with secrets redacted.
 */

/**
 * The database could not be reached or did not answer in time. An HttpException, so that
 * wherever it surfaces (guard, service call in a handler) the client gets 503, not 500.
 */
export class StoreUnavailableError extends ServiceUnavailableException {
  constructor(
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super({ statusCode: 503, error: 'Service Unavailable', message: 'Session store unavailable' }, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A pg error that means "not reachable or not answering now", as opposed to a problem with
 * the statement: connection exceptions (08), operator intervention and statement timeout
 * (57), resources (53), serialization failure and deadlock (40), read-only after a failover
 * (25006), lock not available (55P03), and a new connection refused because the database is
 * gone or the credentials no longer work (3D000, 28: a dropped or renamed database, a rotated
 * password). All are worth a 503 and a retry, never a 500.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string')
    return /^(08|57|53|40|28)/.test(code) || ['25006', '55P03', '3D000'].includes(code) || /^E[A-Z]+$/.test(code); // E...: ECONNREFUSED, ETIMEDOUT
  const message = error instanceof Error ? error.message : '';
  return code === undefined && /timeout|terminated|Connection|ECONN/i.test(message);
}

/**
 * A named prepared statement that the server connection does not have (26000) or already has
 * (42P05): what a transaction pooler (PgBouncer before 1.21, Supavisor, RDS Proxy) does to
 * `preparedStatements: true`, since each transaction may land on another server connection.
 * The deployment, not the request: 503, with a log line naming the setting that fixes it.
 */
export function isPoolerPreparedStatementError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === '42P05' || code === '26000';
}

/** Appended to the warning of a pooler's prepared-statement error. */
export const POOLER_HINT =
  'a transaction pooler (e.g. PgBouncer pool_mode=transaction) between the app and PostgreSQL? ' +
  'set the SessionModule option preparedStatements: false';

/**
 * A data exception (SQLSTATE class 22, e.g. an escape sequence jsonb refuses): the caller's
 * input, answered 400. Not a store fault, and its text may quote user data, so it is not logged.
 */
export function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('22');
}

/** `error` as the caller should see it: StoreUnavailableError (503) when the database is unavailable. */
export function asStoreError(error: unknown): unknown {
  return isConnectionError(error) || isPoolerPreparedStatementError(error)
    ? new StoreUnavailableError((error as Error).message, { cause: error })
    : error;
}

/** Runs of hex (a token hash, `\x...` bytea) or a 43-character base64url string (a token) never reach a log line. */
const SECRET_LIKE = /\\?x?[0-9a-f]{32,}|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/gi;

export function redactSecrets(text: string): string {
  return text.replace(SECRET_LIKE, '[redacted]');
}

/** "TypeError: message (cause: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432)", secrets redacted. */
export function describeStoreError(error: unknown): string {
  const describe = (e: unknown) => {
    const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
    return [typeof code === 'string' ? code : undefined, typeof message === 'string' ? message : String(e)]
      .filter(Boolean)
      .join(' ');
  };
  const cause = (error as { cause?: unknown })?.cause;
  // pg's DatabaseError is named 'error'; its class says more.
  const name = error instanceof Error ? `${error.name === 'error' ? error.constructor.name : error.name}: ` : '';
  return redactSecrets(`${name}${describe(error)}${cause ? ` (cause: ${describe(cause)})` : ''}`);
}

/** What kind of failure, without anything that names the infrastructure (for public health reports). */
export function storeErrorCategory(error: unknown): string {
  const code = String(
    (error as { code?: unknown })?.code ?? (error as { cause?: { code?: unknown } })?.cause?.code ?? '',
  );
  const message = error instanceof Error ? error.message : '';
  if (/no answer within|timeout/i.test(message) || code === '57014') return 'timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code.startsWith('28')) return 'auth_failed';
  if (code === '3D000') return 'database_missing';
  if (code.startsWith('57P') || /terminat/i.test(message)) return 'connection_terminated';
  if (code.startsWith('08') || /^E[A-Z]+$/.test(code)) return 'connection_failed';
  if (code.startsWith('53')) return 'server_overloaded';
  if (code === '42P05' || code === '26000') return 'pooler_prepared_statement';
  return 'error';
}

/**
 * Warnings for failed statements, by statement name, with their cause. An outage fails every
 * request, so each statement warns at most once per interval, with the number held back since.
 */
export class StoreErrorLog {
  private readonly logger = new Logger('SessionStore');
  private readonly lastWarned = new Map<string, { at: number; heldBack: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  report(statement: string, error: unknown): void {
    if (isDataException(error)) return;
    const now = performance.now();
    const last = this.lastWarned.get(statement);
    if (last && now - last.at < this.intervalMs) {
      last.heldBack++;
      return;
    }
    const heldBack = last?.heldBack
      ? ` (${last.heldBack} more failures of it in the last ${Math.round((now - last.at) / 1000)} s)`
      : '';
    this.lastWarned.set(statement, { at: now, heldBack: 0 });
    const hint = isPoolerPreparedStatementError(error) ? ` (${POOLER_HINT})` : '';
    this.logger.warn(`statement ${statement} failed: ${describeStoreError(error)}${hint}${heldBack}`);
  }
}
