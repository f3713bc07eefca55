import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateSessionRetiredTokens1796342400000 } from '../../migrations/1796342400000-CreateSessionRetiredTokens.js';
import { PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionPurgeService } from '../../src/session/purge/session-purge.service.js';
import { TokenReuseDetector } from '../../src/session/security/token-reuse.detector.js';
import { resolveSessionOptions } from '../../src/session/session.options.js';
import { SESSION_SQL } from '../../src/session/store/session.sql.js';
import { RETIRED_TOKENS_KEPT, SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const HOUR = 3_600_000;
const GRACE = 30_000;
const ctx = { actorId: null, ip: '203.0.113.66', userAgent: 'curl/8.9.1' };

describe('retired tokens: every token a session rotated out, by hash, bounded per session', () => {
  let db: TestDatabase;
  let store: SessionStore;
  let detector: TokenReuseDetector;
  const evicted: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    store = new SessionStore(db.pool, { changes: { evictSession: (id) => evicted.push(id), evictAll: () => {} } });
    detector = new TokenReuseDetector(store, GRACE);
  });
  afterAll(async () => db?.drop());

  /** A session and the tokens it had, oldest first: tokens[0] from the login, the last one current. */
  async function sessionWithRotations(rotations: number, reason: 'interval' | 'manual' = 'interval') {
    const tokens = [generateToken()];
    const row = await store.create({
      tokenHash: hashToken(tokens[0]),
      replacesTokenHash: null,
      userId: 'u-retired',
      data: { cart: 3 },
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: 2 * HOUR,
      ip: null,
      userAgent: null,
    });
    for (let i = 0; i < rotations; i++) {
      const next = generateToken();
      const rotated = await store.rotate({
        id: row.id,
        oldTokenHash: hashToken(tokens.at(-1)!),
        newTokenHash: hashToken(next),
        idleTimeoutMs: HOUR,
        reason,
        reauthenticated: false,
        context: ctx,
      });
      expect(rotated).toBeDefined();
      tokens.push(next);
    }
    return { id: row.id, tokens };
  }
  /** Every retirement further back than the grace window, as if the rotations happened long ago. */
  const graceOver = (id: string) =>
    db.pool.query(`UPDATE session_retired_tokens SET retired_at = now() - interval '1 hour' WHERE session_id = $1`, [
      id,
    ]);
  const retiredRows = async (id: string) =>
    (
      await db.pool.query(
        'SELECT token_hash, token_generation FROM session_retired_tokens WHERE session_id = $1 ORDER BY token_generation',
        [id],
      )
    ).rows;
  const auditOf = async (id: string, event: string) =>
    (
      await db.pool.query(
        'SELECT details, ip FROM session_audit_log WHERE session_id = $1 AND event = $2 ORDER BY id',
        [id, event],
      )
    ).rows;

  it('a rotation records the hash of the token it retires (never the token) and its generation, in the same statement', async () => {
    const { id, tokens } = await sessionWithRotations(3);
    const rows = await retiredRows(id);
    expect(rows).toEqual([0, 1, 2].map((g) => ({ token_hash: hashToken(tokens[g]), token_generation: g })));
    const { rows: session } = await db.pool.query('SELECT token_generation FROM user_sessions WHERE id = $1', [id]);
    expect(session).toEqual([{ token_generation: 3 }]);
    expect((await auditOf(id, 'rotated')).map((r) => r.details.generation)).toEqual([1, 2, 3]);

    // A rotation that lost (the presented token is no longer current) records nothing.
    const lost = await store.rotate({
      id,
      oldTokenHash: hashToken(tokens[1]),
      newTokenHash: hashToken(generateToken()),
      idleTimeoutMs: HOUR,
      reason: 'interval',
      reauthenticated: false,
      context: ctx,
    });
    expect(lost).toBeUndefined();
    expect(await retiredRows(id)).toHaveLength(3);
  });

  it('finds the tokens of 1, 2 and 5 rotations back with their generation; not the current one, not an unknown one', async () => {
    const { id, tokens } = await sessionWithRotations(5);
    for (const behind of [1, 2, 5])
      expect(await store.findRetiredToken(hashToken(tokens[5 - behind]))).toMatchObject({
        sessionId: id,
        generation: 5 - behind,
        currentGeneration: 5,
        revokedAt: null,
      });
    expect(await store.findRetiredToken(hashToken(tokens[5]))).toBeUndefined();
    expect(await store.findRetiredToken(hashToken(generateToken()))).toBeUndefined();
  });

  it.each([1, 2, 5])(
    'a token %i rotation(s) back, presented past its grace, revokes the session once, naming its generation',
    async (behind) => {
      const { id, tokens } = await sessionWithRotations(5);
      await graceOver(id);
      evicted.length = 0;
      const stolen = hashToken(tokens[5 - behind]);
      expect(await detector.retiredTokenReused(stolen, () => ctx)).toBe(true);
      expect(evicted).toEqual([id]); // the local cache is told at once; other instances by NOTIFY
      const { rows } = await db.pool.query('SELECT revoked_at, revoke_reason, data FROM user_sessions WHERE id = $1', [
        id,
      ]);
      expect(rows[0]).toMatchObject({ revoke_reason: 'token_reuse', data: {} });
      expect(rows[0].revoked_at).not.toBeNull();
      // Later presentations answer as an unknown token would (the caller counts them for the flood limits).
      expect(await detector.retiredTokenReused(stolen, () => ctx)).toBe(false);
      expect(await detector.retiredTokenReused(hashToken(tokens[0]), () => ctx)).toBe(false);
      expect(await auditOf(id, 'token_reuse_detected')).toEqual([
        {
          details: { reason: 'token_reuse', generation: 5 - behind, current: 5, behind },
          ip: ctx.ip,
        },
      ]);
    },
  );

  it('ten concurrent presentations of one retired token: one revokes and audits, the other nine answer as unknown', async () => {
    const { id, tokens } = await sessionWithRotations(3);
    await graceOver(id);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => detector.retiredTokenReused(hashToken(tokens[0]), () => ctx)),
    );
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await auditOf(id, 'token_reuse_detected')).toHaveLength(1);
  });

  it('inside the grace window a retired token is not reuse (in-flight requests of a manual rotation): nothing is revoked', async () => {
    const { id, tokens } = await sessionWithRotations(2, 'manual');
    expect(await detector.retiredTokenReused(hashToken(tokens[1]), () => ctx)).toBe(false);
    expect(await store.findLiveById(id)).toBeDefined();
    await graceOver(id);
    expect(await detector.retiredTokenReused(hashToken(tokens[1]), () => ctx)).toBe(true);
    expect(await store.findLiveById(id)).toBeUndefined();
  });

  it('the token of an expired session revokes nothing (the session ends anyway)', async () => {
    const { id, tokens } = await sessionWithRotations(2);
    await graceOver(id);
    await db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
    expect(await detector.retiredTokenReused(hashToken(tokens[0]), () => ctx)).toBe(false);
    expect(await auditOf(id, 'token_reuse_detected')).toEqual([]);
  });

  it('the previous token past grace names its generation too', async () => {
    const { id, tokens } = await sessionWithRotations(4);
    await detector.previousTokenReused(id, hashToken(tokens[3]), ctx);
    expect((await auditOf(id, 'token_reuse_detected')).map((r) => r.details)).toEqual([
      { reason: 'token_reuse', generation: 3, current: 4, behind: 1 },
    ]);
  });

  it(`keeps the newest ${RETIRED_TOKENS_KEPT} per session: past the cap the oldest is forgotten and is then unknown`, async () => {
    const rotations = RETIRED_TOKENS_KEPT + 6;
    const { id, tokens } = await sessionWithRotations(rotations);
    const rows = await retiredRows(id);
    expect(rows).toHaveLength(RETIRED_TOKENS_KEPT);
    expect(rows[0].token_generation).toBe(rotations - RETIRED_TOKENS_KEPT);
    expect(rows.at(-1).token_generation).toBe(rotations - 1);
    await graceOver(id);
    for (let g = 0; g < rotations - RETIRED_TOKENS_KEPT; g++)
      expect(await store.findRetiredToken(hashToken(tokens[g]))).toBeUndefined();
    expect(await detector.retiredTokenReused(hashToken(tokens[0]), () => ctx)).toBe(false);
    expect(await store.findLiveById(id)).toBeDefined();
    // The oldest one kept still revokes.
    expect(await detector.retiredTokenReused(hashToken(tokens[rotations - RETIRED_TOKENS_KEPT]), () => ctx)).toBe(true);
  });

  it('concurrent rotations from one token: one wins, one retired row, one generation step', async () => {
    const { id, tokens } = await sessionWithRotations(0);
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        store.rotate({
          id,
          oldTokenHash: hashToken(tokens[0]),
          newTokenHash: hashToken(generateToken()),
          idleTimeoutMs: HOUR,
          reason: 'interval',
          reauthenticated: false,
          context: ctx,
        }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await retiredRows(id)).toEqual([{ token_hash: hashToken(tokens[0]), token_generation: 0 }]);
  });

  it('logout and the purge delete the retired hashes with the session', async () => {
    const loggedOut = await sessionWithRotations(3);
    await store.deleteWithEvent(loggedOut.id, 'logout', ctx);
    expect(await retiredRows(loggedOut.id)).toEqual([]);

    const expired = await sessionWithRotations(3);
    const live = await sessionWithRotations(2);
    await db.pool.query(`UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`, [
      expired.id,
    ]);
    const purge = new SessionPurgeService(new PurgeStore(db.pool), resolveSessionOptions({ purge: { dutyCycle: 1 } }));
    expect((await purge.runOnce()).sessionsDeleted).toBeGreaterThanOrEqual(1);
    expect(await retiredRows(expired.id)).toEqual([]);
    expect(await retiredRows(live.id)).toHaveLength(2);
  });

  it('finds a retired token through the primary key, never a scan; the hot path keeps its plan', async () => {
    const { id } = await sessionWithRotations(0);
    await db.pool.query(
      `INSERT INTO session_retired_tokens (token_hash, session_id, token_generation)
       SELECT sha256(('r' || g)::bytea), $1, g FROM generate_series(1, 20000) g`,
      [id],
    );
    await db.pool.query('ANALYZE session_retired_tokens');
    const plan = async (text: string) =>
      (await db.pool.query(`EXPLAIN ${text.replaceAll('$1', `sha256('r42'::bytea)`)}`)).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    const retired = await plan(SESSION_SQL.findRetiredToken.text);
    expect(retired).not.toMatch(/Seq Scan on session_retired_tokens/);
    expect(retired).toMatch(/session_retired_tokens_pkey/);
    expect(await plan(SESSION_SQL.lookupByTokenHash.text)).not.toMatch(/session_retired_tokens/);
  });
});

describe('the retired-tokens migration on a database with sessions already rotated', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('rewrites no session (generation 0 for all); their previous token still revokes, without a generation; down removes both', async () => {
    const migration = new CreateSessionRetiredTokens1796342400000();
    const runner = { query: (text: string) => db.pool.query(text) } as never;
    await migration.down(runner);
    const previous = generateToken();
    const {
      rows: [rotated],
    } = await db.pool.query(
      `INSERT INTO user_sessions (token_hash, previous_token_hash, user_id, idle_expires_at, absolute_expires_at, rotated_at)
       VALUES ($1, $2, 'u-old', now() + interval '1 hour', now() + interval '2 hours', now() - interval '5 minutes')
       RETURNING id, ctid`,
      [hashToken(generateToken()), hashToken(previous)],
    );
    await migration.up(runner);
    // No UPDATE of user_sessions: the row is where it was (a rewrite would move it), and counts from 0.
    const { rows: sessions } = await db.pool.query('SELECT id, ctid, token_generation FROM user_sessions');
    expect(sessions).toEqual([{ id: rotated.id, ctid: rotated.ctid, token_generation: 0 }]);
    expect((await db.pool.query('SELECT * FROM session_retired_tokens')).rows).toEqual([]);

    const store = new SessionStore(db.pool);
    await new TokenReuseDetector(store, GRACE).previousTokenReused(rotated.id, hashToken(previous), ctx);
    const { rows: audit } = await db.pool.query(
      `SELECT details FROM session_audit_log WHERE session_id = $1 AND event = 'token_reuse_detected'`,
      [rotated.id],
    );
    expect(audit).toEqual([{ details: { reason: 'token_reuse' } }]);
    expect(await store.findLiveById(rotated.id)).toBeUndefined();
  });
});
