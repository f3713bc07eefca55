import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { AddSessionSecondFactor1796688000000, sessionMigrations } from '../../migrations/index.js';
import { createTestDatabase, undoMigrationsFrom, type TestDatabase } from '../support/database.js';

const HASH = (n: number) => Buffer.alloc(32, n);

describe('migration 1796688000000 (second factor)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const insert = async (userId: string, n: number, pending?: boolean) => {
    const { rows } = await db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at${pending === undefined ? '' : ', second_factor_pending'})
       VALUES ($1, $2, now() + interval '1 hour', now() + interval '2 hours'${pending === undefined ? '' : ', $3'}) RETURNING id`,
      pending === undefined ? [HASH(n), userId] : [HASH(n), userId, pending],
    );
    return rows[0].id as string;
  };

  it('a session is a full one unless created pending; attempts never go negative', async () => {
    const full = await insert('u-alice', 1);
    expect(
      (
        await db.pool.query('SELECT second_factor_pending, second_factor_attempts FROM user_sessions WHERE id = $1', [
          full,
        ])
      ).rows,
    ).toEqual([{ second_factor_pending: false, second_factor_attempts: 0 }]);
    await expect(
      db.pool.query('UPDATE user_sessions SET second_factor_attempts = -1 WHERE id = $1', [full]),
    ).rejects.toThrow(/user_sessions_second_factor_attempts_chk/);
  });

  it('down ends the pending sessions (they would pass for full ones) and drops the columns; up adds them back', async () => {
    await insert('u-carol', 2, true);
    const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: sessionMigrations });
    await dataSource.initialize();
    try {
      await undoMigrationsFrom(dataSource, AddSessionSecondFactor1796688000000);
      expect((await db.pool.query('SELECT user_id FROM user_sessions ORDER BY user_id')).rows).toEqual([
        { user_id: 'u-alice' },
      ]);
      const columns = await db.pool.query(
        `SELECT column_name FROM information_schema.columns
         WHERE table_name = 'user_sessions' AND column_name LIKE 'second_factor%'`,
      );
      expect(columns.rows).toEqual([]);
      await dataSource.runMigrations();
      expect((await db.pool.query('SELECT second_factor_pending FROM user_sessions')).rows).toEqual([
        { second_factor_pending: false },
      ]);
    } finally {
      await dataSource.destroy();
    }
  });
});
