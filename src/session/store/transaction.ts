import type { PoolClient, QueryResultRow } from 'pg';
import type { Statement } from './statement.js';
import { SESSION_SQL as SQL } from './session.sql.js';

export type RunInTransaction = (statement: Statement, values: unknown[]) => Promise<QueryResultRow[]>;

/**
 * `work` between BEGIN and COMMIT on a checked-out `client` (released here); any error rolls it
 * back. A checked-out client has no pool listener: a lost server's 'error' is heard here (unheard,
 * it would crash the process), and a client that broke or could not roll back is discarded.
 */
export async function inTransaction<T>(
  client: PoolClient,
  run: (statement: Statement, values: unknown[] | undefined) => Promise<QueryResultRow[]>,
  work: (run: RunInTransaction) => Promise<T>,
): Promise<T> {
  let broken = false;
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await run(SQL.begin, undefined);
    const result = await work(run);
    await run(SQL.commit, undefined);
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
