import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { AddSessionImpersonation1796601600000, sessionMigrations } from '../../migrations/index.js';
import { createTestDatabase, undoMigrationsFrom, type TestDatabase } from '../support/database.js';

const HASH = (n: number) => Buffer.alloc(32, n);

describe('migration 1796601600000 (impersonation)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const insert = async (userId: string, n: number, impersonator?: { id: string; sessionId: string | null }) => {
    const { rows } = await db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at, impersonator_id, impersonator_session_id)
       VALUES ($1, $2, now() + interval '1 hour', now() + interval '2 hours', $3, $4) RETURNING id`,
      [HASH(n), userId, impersonator?.id ?? null, impersonator?.sessionId ?? null],
    );
    return rows[0].id as string;
  };

  it('records the admin and the admin session together, or neither', async () => {
    const admin = await insert('u-admin', 1);
    await insert('u-alice', 2, { id: 'u-admin', sessionId: admin });
    await expect(insert('u-alice', 3, { id: 'u-admin', sessionId: null })).rejects.toThrow(
      /user_sessions_impersonation_chk/,
    );
  });

  it("down ends the impersonation sessions (they would pass for the user's own) and drops the columns; up adds them back", async () => {
    const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: sessionMigrations });
    await dataSource.initialize();
    try {
      await undoMigrationsFrom(dataSource, AddSessionImpersonation1796601600000);
      expect((await db.pool.query('SELECT user_id FROM user_sessions ORDER BY user_id')).rows).toEqual([
        { user_id: 'u-admin' },
      ]);
      const columns = await db.pool.query(
        `SELECT column_name FROM information_schema.columns
         WHERE table_name = 'user_sessions' AND column_name LIKE 'impersonator%'`,
      );
      expect(columns.rows).toEqual([]);
      await dataSource.runMigrations();
      expect((await db.pool.query('SELECT impersonator_id FROM user_sessions')).rows).toEqual([
        { impersonator_id: null },
      ]);
    } finally {
      await dataSource.destroy();
    }
  });
});
