import type { Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { asStoreError, StoreUnavailableError } from './pg-errors.js';
import type { Statement } from './statement.js';

/**
 * `work`, or, when it has not settled within `ms`, what `onTimeout` returns (or throws). For
 * waits on work that is already under way (the metrics' shared sample); a statement of one's
 * own goes through queryWithin(). The timer never outlives the race.
 */
export async function within<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One statement, bounded as a whole so its caller never hangs: pg's query_timeout once a
 * connection is checked out (on expiry pg-pool discards that connection, so a stuck statement
 * does not keep its slot), and one timer that also covers the wait for a connection. `done`
 * is called exactly once, with the rows or with the error (`timeoutError()` on the timer).
 * Callback style, so that callers on the hot path pay for one promise of their own: pg's,
 * pg-pool's and a race between them cost more than the timers. `prepared` false sends even a
 * statement with a `preparedAs` name unnamed (the `preparedStatements` option).
 */
export function queryWithin(
  client: Pool | PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  ms: number,
  timeoutError: () => unknown,
  done: (error: unknown, rows?: QueryResultRow[]) => void,
  prepared = true,
): void {
  let settled = false;
  const settle = (error: unknown, rows?: QueryResultRow[]) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(error, rows);
  };
  const timer = setTimeout(() => settle(timeoutError()), ms);
  const config = {
    name: prepared ? statement.preparedAs : undefined,
    text: statement.text,
    values,
    query_timeout: ms,
  } as QueryConfig;
  try {
    (client as Pool).query(config, (error: Error | undefined, result: QueryResult) =>
      settle(error, error ? undefined : result.rows),
    );
  } catch (error) {
    settle(error);
  }
}

/** queryWithin() as a promise of the rows, for callers off the hot path. */
export function boundedQuery(
  client: Pool | PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  ms: number,
  timeoutError: () => unknown,
): Promise<QueryResultRow[]> {
  return new Promise((resolve, reject) =>
    queryWithin(client, statement, values, ms, timeoutError, (error, rows) => (rows ? resolve(rows) : reject(error))),
  );
}

/** boundedQuery() for the module's stores off the hot path: a timeout or a lost server is a StoreUnavailableError (503). */
export async function storeQuery(
  client: Pool | PoolClient,
  statement: Statement,
  values: unknown[] | undefined,
  ms: number,
): Promise<QueryResultRow[]> {
  try {
    return await boundedQuery(
      client,
      statement,
      values,
      ms,
      () => new StoreUnavailableError(`no answer within ${ms} ms`),
    );
  } catch (error) {
    throw asStoreError(error);
  }
}
