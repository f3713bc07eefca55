import pg from 'pg';
import { findMissingSchema, SessionSchemaError } from '../startup/session-schema.js';

/** The documented exit codes of `nest-pg-session` (see --help). */
export const EXIT = {
  ok: 0,
  /** The database could not be reached, or a statement failed. */
  failed: 1,
  /** Unknown command or option, bad option value, DATABASE_URL missing or not a PostgreSQL URL. */
  usage: 2,
  /** The session tables (or the latest migration) are missing: run `nest-pg-session migrate`. */
  noTables: 3,
} as const;

/** A failure the CLI reports in one line, with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const EXAMPLE = 'DATABASE_URL=postgres://user:password@host:5432/app npx nest-pg-session <command>';

/**
 * DATABASE_URL, checked before anything connects. Messages never show the value itself
 * when it does not parse (it may hold a password), and show a parsed one without its password.
 */
export function databaseUrlFrom(env: NodeJS.ProcessEnv): URL {
  const value = env.DATABASE_URL?.trim();
  if (!value)
    throw new CliError(
      `DATABASE_URL is not set: point it at the database that holds the session tables, e.g. ${EXAMPLE}`,
      EXIT.usage,
    );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(
      `DATABASE_URL is not a URL (value not shown: it may hold a password); expected postgres://user:password@host:5432/database`,
      EXIT.usage,
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new CliError(
      // Without '://', what stands before the first ':' may be a user name, so it is not repeated.
      `DATABASE_URL must be a postgres:// or postgresql:// URL, not ${value.includes('://') ? `${url.protocol}//...` : 'this'}; e.g. ${EXAMPLE}`,
      EXIT.usage,
    );
  return url;
}

/** The URL as it may be printed: without its password. */
export function shown(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = '***';
  // pg also reads secrets from the query string (?password=, ?sslpassword=, ?sslkey=).
  for (const key of [...copy.searchParams.keys()])
    if (/pass|secret|key|token/i.test(key)) copy.searchParams.set(key, '***');
  return copy.href;
}

/** A pool of one connection; an idle connection dropping is reported by the query that needed it. */
export function openPool(url: URL): pg.Pool {
  const pool = new pg.Pool({ connectionString: url.href, max: 1, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => undefined);
  return pool;
}

/** Connects once, so that an unreachable database, a wrong password or a missing database are one clear line. */
export async function connect(url: URL): Promise<pg.Pool> {
  const pool = openPool(url);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw cannotReach(url, error);
  }
  return pool;
}

export function cannotReach(url: URL, error: unknown): CliError {
  const { code, message } = error as { code?: string; message?: string };
  return new CliError(
    `cannot use the database at ${shown(url)}: ${message ?? String(error)}${code && !message?.includes(code) ? ` (${code})` : ''}`,
    EXIT.failed,
  );
}

/** The commands that read or write sessions need the tables: exit 3 with the way to create them. */
export async function requireSchema(pool: pg.Pool): Promise<void> {
  const missing = await findMissingSchema(pool);
  if (missing) throw new CliError(new SessionSchemaError(missing).message, EXIT.noTables);
}
