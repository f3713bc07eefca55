import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { SessionAuditStore } from '../../src/session/audit/audit.store.js';
import { SessionAuditService } from '../../src/session/audit/session-audit.service.js';
import { ModuleKeyStore } from '../../src/session/keys/module-key.store.js';
import { StoreUnavailableError } from '../../src/session/store/pg-errors.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** A service as one app instance has it: its own pool, its own key store (empty cache). */
const instance = (db: TestDatabase) => new SessionAuditService(new SessionAuditStore(db.newPool({ max: 2 })));

const messageOf = async (promise: Promise<unknown>): Promise<string[]> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BadRequestException);
  return ((error as BadRequestException).getResponse() as { message: string[] }).message;
};

describe('audit cursors under the key kept in session_module_keys', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(`
      INSERT INTO session_audit_log (occurred_at, event, user_id)
      SELECT timestamptz '2025-03-01 00:00Z' + g * interval '1 second', 'created', 'u-1' FROM generate_series(1, 30) g`);
  });
  afterAll(async () => db?.drop());

  it('instances starting together create one key and all use it', async () => {
    const stores = Array.from({ length: 8 }, () => new ModuleKeyStore(db.newPool({ max: 1 })));
    const keys = await Promise.all(stores.map((store) => store.key('audit-cursor')));
    const { rows } = await db.pool.query(`SELECT name, key FROM session_module_keys`);
    expect(rows).toEqual([{ name: 'audit-cursor', key: keys[0] }]);
    expect(keys[0]).toHaveLength(32);
    for (const key of keys) expect(key.equals(keys[0])).toBe(true);
  });

  it('a key read that failed (database busy or away: 503) is tried again on the next call, not remembered', async () => {
    const tiny = db.newPool({ max: 1 });
    const held = await tiny.connect();
    const keys = new ModuleKeyStore(tiny, 200);
    try {
      await expect(keys.key('audit-cursor')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      held.release();
    }
    const { rows } = await db.pool.query(`SELECT key FROM session_module_keys WHERE name = 'audit-cursor'`);
    expect((await keys.key('audit-cursor')).equals(rows[0].key)).toBe(true);
  });

  it('a cursor made by one instance verifies on another, and after a restart', async () => {
    const first = await instance(db).query({ userId: 'u-1', limit: 10 });
    const onSecond = await instance(db).query({ userId: 'u-1', limit: 10, cursor: first.nextCursor! });
    const sameInstanceAgain = await instance(db).query({ userId: 'u-1', limit: 10, cursor: first.nextCursor! });
    expect(onSecond.items).toHaveLength(10);
    expect(onSecond.items.map((i) => i.id)).toEqual(sameInstanceAgain.items.map((i) => i.id));
    expect(Number(onSecond.items[0].id)).toBeLessThan(Number(first.items.at(-1)!.id));
  });

  it('refuses edited, forged (unkeyed SHA-256, as before) and truncated cursors with 400 and the reason', async () => {
    const audit = instance(db);
    const { nextCursor } = await audit.query({ userId: 'u-1', limit: 10 });
    const [us, id, mac] = Buffer.from(nextCursor!, 'base64url').toString().split('.');
    const encode = (text: string) => Buffer.from(text).toString('base64url');
    const filters = JSON.stringify(['u-1', null, null, null, null, null, null]);
    const body = `${us}.${Number(id) - 5}`;
    const sha = createHash('sha256').update(`nps-audit-cursor\0${body}\0${filters}`).digest('base64url');
    const refused = [expect.stringMatching(/^cursor does not belong to this query \(it was altered or forged/)];
    expect(await messageOf(audit.query({ userId: 'u-1', cursor: encode(`${body}.${mac}`) }))).toEqual(refused);
    expect(await messageOf(audit.query({ userId: 'u-1', cursor: encode(`${body}.${sha}`) }))).toEqual(refused);
    expect(await messageOf(audit.query({ userId: 'u-1', cursor: encode(`${us}.${id}.${mac.slice(0, 22)}`) }))).toEqual([
      'cursor is malformed',
    ]);
    expect(await messageOf(audit.query({ userId: 'u-2', cursor: nextCursor! }))).toEqual(refused);
  });

  it('a replaced key refuses the cursors made under the old one (the documented way to rotate it)', async () => {
    const before = await instance(db).query({ userId: 'u-1', limit: 10 });
    await db.pool.query(`DELETE FROM session_module_keys WHERE name = 'audit-cursor'`);
    const restarted = instance(db);
    expect(await messageOf(restarted.query({ userId: 'u-1', cursor: before.nextCursor! }))).toEqual([
      expect.stringMatching(/^cursor does not belong to this query/),
    ]);
    const fresh = await restarted.query({ userId: 'u-1', limit: 10 });
    expect((await restarted.query({ userId: 'u-1', cursor: fresh.nextCursor! })).items).toHaveLength(20);
  });
});
