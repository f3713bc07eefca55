import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { AddSessionLifetimesAndGuests1796428800000, sessionMigrations } from '../../migrations/index.js';
import { createTestDatabase, undoMigrationsFrom, type TestDatabase } from '../support/database.js';

const HASH = (n: number) => Buffer.alloc(32, n);

describe('migration 1796428800000 (lifetimes and guests)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const insert = (userId: string | null, lifetime: string, n: number) =>
    db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, lifetime, idle_expires_at, absolute_expires_at)
       VALUES ($1, $2, $3, now() + interval '1 hour', now() + interval '2 hours')`,
      [HASH(n), userId, lifetime],
    );

  it("keeps a guest row and a user row apart: only a guest has no user, and only it has the 'guest' profile", async () => {
    await insert(null, 'guest', 1);
    await insert('u-1', 'remember', 2);
    await expect(insert(null, 'default', 3)).rejects.toThrow(/user_sessions_guest_lifetime_check/);
    await expect(insert('u-1', 'guest', 4)).rejects.toThrow(/user_sessions_guest_lifetime_check/);
    await expect(insert('u-1', 'x'.repeat(33), 5)).rejects.toThrow(/user_sessions_guest_lifetime_check/);
  });

  it('down ends the guest sessions and restores the old table; up again adds the column back', async () => {
    const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: sessionMigrations });
    await dataSource.initialize();
    try {
      await undoMigrationsFrom(dataSource, AddSessionLifetimesAndGuests1796428800000);
      const columns = await db.pool.query(
        `SELECT column_name, is_nullable FROM information_schema.columns
         WHERE table_name = 'user_sessions' AND column_name IN ('lifetime', 'user_id')`,
      );
      expect(columns.rows).toEqual([{ column_name: 'user_id', is_nullable: 'NO' }]);
      expect((await db.pool.query('SELECT user_id FROM user_sessions')).rows).toEqual([{ user_id: 'u-1' }]);
      await dataSource.runMigrations();
      expect((await db.pool.query('SELECT user_id, lifetime FROM user_sessions')).rows).toEqual([
        { user_id: 'u-1', lifetime: 'default' },
      ]);
    } finally {
      await dataSource.destroy();
    }
  });
});
