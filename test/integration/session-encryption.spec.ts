import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createSecretKey, randomBytes } from 'node:crypto';
import { SessionDataCipher, type DataCipherKey } from '../../src/session/encryption/session-data-cipher.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const HOUR = 3_600_000;
const ctx = { actorId: null, ip: '10.0.0.1', userAgent: 'jest' };
const key = (id: string): DataCipherKey => ({ id, key: createSecretKey(randomBytes(32)) });
const [OLD, NEW] = [key('2026-06'), key('2026-12')];
/** Distinctive values: if any of them shows up in the table's text, plaintext reached the database. */
const SECRET = `iban-${randomBytes(6).toString('hex')}`;
const KEPT = `kept-${randomBytes(6).toString('hex')}`;

describe('session data encrypted at rest (SessionStore against PostgreSQL)', () => {
  let db: TestDatabase;
  const storeWith = (keys: DataCipherKey[], options?: { encryptWrites: boolean; readPlaintext: boolean }) =>
    new SessionStore(db.pool, { cipher: new SessionDataCipher(keys, options) });
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const create = async (store: SessionStore, data: Record<string, unknown>, userId: string | null = 'user-1') => {
    const token = generateToken();
    const row = await store.create({
      tokenHash: hashToken(token),
      replacesTokenHash: null,
      userId,
      data,
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: 2 * HOUR,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
    });
    return { row, token };
  };
  const stored = async (id: string): Promise<{ data: Record<string, string>; text: string }> => {
    const { rows } = await db.pool.query('SELECT data, data::text AS text FROM user_sessions WHERE id = $1', [id]);
    return rows[0];
  };
  const keyIdsOf = (data: Record<string, string>) =>
    Object.fromEntries(Object.entries(data).map(([name, value]) => [name, value.split('.')[1]]));
  const auditOf = async (id: string) =>
    (
      await db.pool.query(
        `SELECT event, details, details::text AS text FROM session_audit_log WHERE session_id = $1 ORDER BY id`,
        [id],
      )
    ).rows;

  it('stores no plaintext: the row holds key names and envelopes; every read returns the plain data', async () => {
    const store = storeWith([NEW]);
    const { row, token } = await create(store, { payment: { iban: SECRET }, theme: 'dark' });
    expect(row.data).toEqual({ payment: { iban: SECRET }, theme: 'dark' });
    const { data, text } = await stored(row.id);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('dark');
    expect(Object.keys(data).sort()).toEqual(['payment', 'theme']);
    expect(keyIdsOf(data)).toEqual({ payment: '2026-12', theme: '2026-12' });
    expect((await store.lookupByTokenHash(hashToken(token)))?.data).toEqual(row.data);
    expect((await store.findLiveById(row.id))?.data).toEqual(row.data);
    // No plaintext in the audit rows either.
    expect((await auditOf(row.id)).map((a) => a.text).join()).not.toContain(SECRET);
  });

  it('patches merge per key in one statement, encrypted: concurrent patches of different keys all survive', async () => {
    const store = storeWith([NEW]);
    const { row } = await create(store, { kept: KEPT });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.patchData(row.id, { [`k${i}`]: `${SECRET}-${i}` }, 65_536)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    // Overwrite one key and clear another (null): the merge replaces only those.
    const last = await store.patchData(row.id, { k0: 'replaced', k1: null }, 65_536);
    expect(last).toMatchObject({ ok: true, data: { kept: KEPT, k0: 'replaced', k1: null, k39: `${SECRET}-39` } });
    const { data, text } = await stored(row.id);
    expect(Object.keys(data)).toHaveLength(41);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(KEPT);
    const found = await store.findLiveById(row.id);
    for (let i = 2; i < 40; i++) expect(found!.data[`k${i}`]).toBe(`${SECRET}-${i}`);
  });

  it('maxDataBytes bounds the data as stored (encrypted), at create and at patch', async () => {
    const store = storeWith([NEW]);
    const { row } = await create(store, { a: 'x' });
    // 300 plain bytes fit 400, but not once sealed (base64url and iv/tag overhead).
    expect(await store.patchData(row.id, { big: 'x'.repeat(300) }, 400)).toEqual({ ok: false, reason: 'too_large' });
    await expect(
      store.create({
        tokenHash: hashToken(generateToken()),
        replacesTokenHash: null,
        userId: 'user-1',
        data: { big: 'x'.repeat(300) },
        idleTimeoutMs: HOUR,
        absoluteTimeoutMs: HOUR,
        ip: null,
        userAgent: null,
        maxDataBytes: 400,
      }),
    ).rejects.toThrow(/once encrypted exceeds the 400-byte limit/);
  });

  it('reads rows written under the old key after rotation (new key first), re-encrypting each value it writes', async () => {
    const before = storeWith([OLD]);
    const { row, token } = await create(before, { cart: ['sku-1'], locale: 'fr' });
    expect(keyIdsOf((await stored(row.id)).data)).toEqual({ cart: '2026-06', locale: '2026-06' });

    const after = storeWith([NEW, OLD]);
    expect((await after.lookupByTokenHash(hashToken(token)))?.data).toEqual({ cart: ['sku-1'], locale: 'fr' });
    const patched = await after.patchData(row.id, { cart: ['sku-1', 'sku-2'] }, 65_536);
    expect(patched).toEqual({ ok: true, data: { cart: ['sku-1', 'sku-2'], locale: 'fr' } });
    // The value written is under the new key; the untouched one keeps the old key until written.
    expect(keyIdsOf((await stored(row.id)).data)).toEqual({ cart: '2026-12', locale: '2026-06' });
    // A rotation of the session's token keeps its id, so the values still open.
    const rotated = await after.rotate({
      id: row.id,
      oldTokenHash: hashToken(token),
      newTokenHash: hashToken(generateToken()),
      idleTimeoutMs: HOUR,
      reason: 'manual',
      reauthenticated: false,
      context: ctx,
    });
    expect(rotated?.data).toEqual({ cart: ['sku-1', 'sku-2'], locale: 'fr' });
  });

  it('removing a key still in use refuses its values: the session is revoked and audited without them', async () => {
    const { row, token } = await create(storeWith([OLD]), { payment: SECRET });
    const withoutOld = storeWith([NEW]);
    const found = await withoutOld.lookupByTokenHash(hashToken(token));
    expect(found).toMatchObject({ id: row.id, data: {} });
    expect(found?.revokedAt).toBeInstanceOf(Date);
    const { rows } = await db.pool.query('SELECT revoke_reason, data FROM user_sessions WHERE id = $1', [row.id]);
    expect(rows[0]).toEqual({ revoke_reason: 'data_unreadable', data: {} });
    const audit = (await auditOf(row.id)).at(-1);
    expect(audit.event).toBe('revoked');
    expect(audit.details).toEqual({ reason: 'data_unreadable', dataKey: 'payment', cause: 'unknown_key' });
    // Later requests with the token are told 'revoked' by the tombstone, no decryption involved.
    expect((await withoutOld.lookupByTokenHash(hashToken(token)))?.revokedAt).toBeInstanceOf(Date);
  });

  it('refuses a tampered row and a value copied from another session (AAD: session id and key name)', async () => {
    const store = storeWith([NEW]);
    const victim = await create(store, { role: 'user', theme: 'light' });
    const admin = await create(store, { role: 'admin' });
    // Copy the admin's sealed role into the victim's row: authentic ciphertext, wrong session.
    await db.pool.query(
      `UPDATE user_sessions SET data = jsonb_set(data, '{role}', (SELECT data->'role' FROM user_sessions WHERE id = $2))
       WHERE id = $1`,
      [victim.row.id, admin.row.id],
    );
    expect(await store.findLiveById(victim.row.id)).toBeUndefined();
    expect((await auditOf(victim.row.id)).at(-1).details).toMatchObject({
      reason: 'data_unreadable',
      dataKey: 'role',
      cause: 'failed_authentication',
    });

    // Move a value to another key of the same session.
    const moved = await create(store, { a: 'x', b: 'y' });
    await db.pool.query(`UPDATE user_sessions SET data = jsonb_set(data, '{b}', data->'a') WHERE id = $1`, [
      moved.row.id,
    ]);
    expect((await store.lookupByTokenHash(hashToken(moved.token)))?.revokedAt).toBeInstanceOf(Date);

    // Flip a character of the ciphertext; a patch that returns the merged data refuses it too.
    const flipped = await create(store, { a: 'x' });
    await db.pool.query(
      `UPDATE user_sessions SET data = jsonb_build_object('a', overlay(data->>'a' placing
         CASE WHEN substr(data->>'a', 40, 1) = 'A' THEN 'B' ELSE 'A' END from 40 for 1)) WHERE id = $1`,
      [flipped.row.id],
    );
    expect(await store.patchData(flipped.row.id, { c: 1 }, 65_536)).toEqual({ ok: false, reason: 'not_found' });
    expect(
      (await db.pool.query('SELECT revoke_reason FROM user_sessions WHERE id = $1', [flipped.row.id])).rows[0],
    ).toEqual({ revoke_reason: 'data_unreadable' });
  });

  it('plain values from before encryption: refused by default, served with readPlaintext, encrypted when written', async () => {
    const plain = new SessionStore(db.pool);
    const legacy = await create(plain, { locale: 'de', cart: [1] });
    const reading = storeWith([NEW], { encryptWrites: true, readPlaintext: true });
    expect((await reading.lookupByTokenHash(hashToken(legacy.token)))?.data).toEqual({ locale: 'de', cart: [1] });
    await reading.patchData(legacy.row.id, { cart: [1, 2] }, 65_536);
    const { data } = await stored(legacy.row.id);
    expect(data.locale).toBe('de');
    expect(keyIdsOf({ cart: data.cart })).toEqual({ cart: '2026-12' });

    const strict = storeWith([NEW]);
    const found = await strict.lookupByTokenHash(hashToken(legacy.token));
    expect(found?.revokedAt).toBeInstanceOf(Date);
    expect((await auditOf(legacy.row.id)).at(-1).details).toMatchObject({ dataKey: 'locale', cause: 'plaintext' });
  });

  it('turning encryption off: with encryptWrites false values open and new ones are plain; without the option, stored text is served as it is', async () => {
    const { row, token } = await create(storeWith([NEW]), { theme: 'dark', note: 'kept' });
    const winding = storeWith([NEW], { encryptWrites: false, readPlaintext: false });
    expect((await winding.lookupByTokenHash(hashToken(token)))?.data).toEqual({ theme: 'dark', note: 'kept' });
    await winding.patchData(row.id, { theme: 'light' }, 65_536);
    expect((await stored(row.id)).data.theme).toBe('light');
    // Without the option nothing is inspected: a value still encrypted reaches the app as its envelope text.
    const off = await new SessionStore(db.pool).lookupByTokenHash(hashToken(token));
    expect(off?.revokedAt).toBeNull();
    expect(off?.data).toEqual({ theme: 'light', note: (await stored(row.id)).data.note });
    expect(off?.data.note).toMatch(/^v1\.2026-12\./);
  });

  it('a plain string shaped like an envelope: served as written without the option, sealed when the option is there', async () => {
    const lookalike = `v1.${NEW.id}.${randomBytes(12).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
    const off = new SessionStore(db.pool);
    const { row, token } = await create(off, { nick: 'x' });
    expect((await off.patchData(row.id, { nick: lookalike }, 65_536)).ok).toBe(true);
    expect((await off.lookupByTokenHash(hashToken(token)))?.data).toEqual({ nick: lookalike });
    expect((await off.sessionsOfUser('user-1', 100)).find((s) => s.id === row.id)?.data).toEqual({ nick: lookalike });

    // Written while the option is there, even with plain writes, it is sealed, so it reads back as the string.
    for (const store of [storeWith([NEW]), storeWith([NEW], { encryptWrites: false, readPlaintext: false })]) {
      const mine = await create(store, { nick: lookalike });
      expect((await stored(mine.row.id)).data.nick).not.toBe(lookalike);
      expect((await store.lookupByTokenHash(hashToken(mine.token)))?.data).toEqual({ nick: lookalike });
    }

    // One written before the option (the row above) cannot be told from an envelope: it is refused
    // like any unreadable value (the session revoked, no error thrown), never served as something else.
    const found = await storeWith([NEW], { encryptWrites: true, readPlaintext: true }).lookupByTokenHash(
      hashToken(token),
    );
    expect(found?.revokedAt).toBeInstanceOf(Date);
    expect((await auditOf(row.id)).at(-1).details).toMatchObject({ dataKey: 'nick', cause: 'failed_authentication' });
  });

  it('data that is no object (stored by hand) revokes the session instead of failing every request', async () => {
    const store = storeWith([NEW]);
    const { row, token } = await create(store, { theme: 'dark' });
    await db.pool.query(`UPDATE user_sessions SET data = 'null'::jsonb WHERE id = $1`, [row.id]);
    expect((await store.lookupByTokenHash(hashToken(token)))?.revokedAt).toBeInstanceOf(Date);
    expect((await auditOf(row.id)).at(-1).details).toMatchObject({ cause: 'failed_authentication' });
  });

  it("a guest's data moves into the user's session at login, sealed to the new session's id", async () => {
    const store = storeWith([NEW]);
    const guest = await create(store, { cart: [SECRET] }, null);
    const user = await store.create({
      tokenHash: hashToken(generateToken()),
      replacesTokenHash: hashToken(guest.token),
      userId: 'user-g',
      data: { locale: 'en' },
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: HOUR,
      ip: null,
      userAgent: null,
      carryGuest: (guestData) => ({ ...guestData, locale: 'en' }),
    });
    expect(user.data).toEqual({ cart: [SECRET], locale: 'en' });
    expect(user.id).not.toBe(guest.row.id);
    expect((await store.findLiveById(user.id))?.data).toEqual({ cart: [SECRET], locale: 'en' });
    expect((await stored(user.id)).text).not.toContain(SECRET);
  });
});
