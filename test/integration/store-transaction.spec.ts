import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { storeQuery } from '../../src/session/store/bounded-wait.js';
import type { Statement } from '../../src/session/store/statement.js';
import { inTransaction } from '../../src/session/store/transaction.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const terminateSelf: Statement = { name: 'terminateSelf', text: 'SELECT pg_terminate_backend(pg_backend_pid())' };
const one: Statement = { name: 'one', text: 'SELECT 1 AS one' };

describe('inTransaction on real PostgreSQL', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 1 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  // Without its 'error' listener the checked-out client's error event is unheard: the process
  // (here, the Jest worker) dies with an uncaught exception instead of the call rejecting.
  it('rejects, without crashing the process, when the server drops the connection mid-transaction; the pool goes on', async () => {
    const client = await pool.connect();
    const run = (statement: Statement, values: unknown[] | undefined) => storeQuery(client, statement, values, 5_000);
    await expect(inTransaction(client, run, (inside) => inside(terminateSelf, []))).rejects.toThrow();
    await new Promise((resolve) => setImmediate(resolve)); // let the socket's close and error events fire
    expect((await pool.query(one.text)).rows).toEqual([{ one: 1 }]); // the broken client was discarded
  });

  it('commits what work did, and rolls back what a failing work did', async () => {
    await pool.query('CREATE TABLE IF NOT EXISTS tx_probe (n int)');
    const insert = (n: number): Statement => ({ name: `insert${n}`, text: `INSERT INTO tx_probe VALUES (${n})` });
    const withClient = async (work: Parameters<typeof inTransaction>[2]) => {
      const client = await pool.connect();
      return inTransaction(client, (s, v) => storeQuery(client, s, v, 5_000), work);
    };
    await withClient((run) => run(insert(1), []));
    await expect(
      withClient(async (run) => {
        await run(insert(2), []);
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    expect((await pool.query('SELECT n FROM tx_probe ORDER BY n')).rows).toEqual([{ n: 1 }]);
  });
});
