// The operations bench/write-path.mjs measures: the module's SessionStore statements (the ones
// that grow with active users, not requests) and connect-pg-simple's equivalents. Each op is
// { prepare(workers) -> one state per concurrent client, step(state) -> true, or false when
// its supply of sessions ran out, finish?() after the window }. A step checks its own result
// and throws when the statement did not do its work: a window never counts a write that did
// not happen.
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const IDLE_MS = 30 * 60_000; // DEFAULTS.idleTimeout
const ABSOLUTE_MS = 12 * 3_600_000; // DEFAULTS.absoluteTimeout
/** A real browser's user agent, so rows and audit rows have their real size. */
export const BROWSER_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
export const CLIENT_IP = '203.0.113.42';
/** Where a request comes from, as the audit rows record it. */
export const CLIENT_CONTEXT = { ip: CLIENT_IP, userAgent: BROWSER_UA };

const newTokenHash = () => createHash('sha256').update(randomBytes(32).toString('base64url')).digest();

/** Deals rows out to `workers` clients, each its own set: different users never share a row. */
function deal(rows, workers) {
  const states = Array.from({ length: workers }, () => ({ rows: [], next: 0 }));
  rows.forEach((row, k) => states[k % workers].rows.push(row));
  return states;
}
const nextRow = (state) => state.rows[state.next++ % state.rows.length];

/** One queue for all clients, so they run out together: the window keeps its concurrency to the end. */
function supplyStates(items, workers) {
  const queue = { items, next: 0 };
  return Array.from({ length: workers }, () => ({ queue }));
}
const take = (state) =>
  state.queue.next < state.queue.items.length ? state.queue.items[state.queue.next++] : undefined;

/** Live sessions (seeded, bench/seed.mjs, or made by the create op), a different sample for every window. */
async function liveSessions(pool, n) {
  const { rows } = await pool.query(
    `SELECT id, token_hash FROM user_sessions
     WHERE user_id NOT LIKE 'supply-%' AND revoked_at IS NULL AND idle_expires_at > now() + interval '5 minutes'
     ORDER BY random() LIMIT $1`,
    [n],
  );
  return rows.map((r) => ({ id: r.id, tokenHash: r.token_hash }));
}

/** `n` fresh sessions for ops that use one up (revoke, logout), as a login would leave them. */
async function freshSessions(pool, n) {
  const tag = `supply-${randomBytes(4).toString('hex')}-`;
  const { rows } = await pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, data, idle_expires_at, absolute_expires_at, ip, user_agent)
     SELECT sha256(convert_to($1 || g, 'UTF8')), $1 || g, '{}'::jsonb, now() + interval '30 minutes',
            now() + interval '12 hours', $3, $4
     FROM generate_series(1, $2::int) g RETURNING id`,
    [tag, n, CLIENT_IP, BROWSER_UA],
  );
  return rows.map((r) => r.id);
}

/** After a window: the supply it did not use (and the tombstones it made) go, so the table stays its seeded size. */
async function dropSupply(pool, table, column) {
  await pool.query(`DELETE FROM ${table} WHERE ${column} LIKE 'supply-%'`);
}

function expect(ok, what) {
  if (!ok) throw new Error(`write-path bench: ${what}`);
  return true;
}

/** The module's statements through one SessionStore (`notify` decides cache.notify). */
export function ourOps(store, pool, { rowsPerWorker = 200, supply = 20_000 } = {}) {
  const sampled = async (workers) => deal(await liveSessions(pool, workers * rowsPerWorker), workers);
  return {
    lookup: {
      prepare: sampled,
      step: async (s) => expect(await store.lookupByTokenHash(nextRow(s).tokenHash), 'lookup found nothing'),
    },
    create: {
      prepare: async (workers) => Array.from({ length: workers }, (_, w) => ({ w, n: 0 })),
      step: async (s) =>
        expect(
          await store.create({
            tokenHash: newTokenHash(),
            replacesTokenHash: null,
            userId: `login-${s.w}-${s.n++}-${randomBytes(3).toString('hex')}`,
            data: {},
            idleTimeoutMs: IDLE_MS,
            absoluteTimeoutMs: ABSOLUTE_MS,
            ...CLIENT_CONTEXT,
          }),
          'create returned no row',
        ),
    },
    // touchInterval 0: every call is past the interval, so every call writes (the steady-state
    // rate of touches is the model's business, not the bench's).
    touch: {
      prepare: sampled,
      step: async (s) => expect(await store.touchIfStale(nextRow(s).id, IDLE_MS, 0), 'touch wrote nothing'),
    },
    rotate: {
      prepare: sampled,
      step: async (s) => {
        const row = nextRow(s);
        const next = newTokenHash();
        const rotated = await store.rotate({
          id: row.id,
          oldTokenHash: row.tokenHash,
          newTokenHash: next,
          idleTimeoutMs: IDLE_MS,
          reason: 'interval',
          reauthenticated: false,
          context: CLIENT_CONTEXT,
        });
        row.tokenHash = next;
        return expect(rotated, 'rotate found no current token');
      },
    },
    patch: {
      prepare: sampled,
      step: async (s) => {
        const result = await store.patchData(nextRow(s).id, { cartItems: s.next }, 65_536);
        return expect(result.ok, `patch refused: ${result.reason}`);
      },
    },
    revoke: {
      prepare: async (workers) => supplyStates(await freshSessions(pool, supply), workers),
      finish: () => dropSupply(pool, 'user_sessions', 'user_id'),
      step: async (s) => {
        const id = take(s);
        return id !== undefined && expect(await store.revoke(id, 'user', CLIENT_CONTEXT), 'revoke matched nothing');
      },
    },
    logout: {
      prepare: async (workers) => supplyStates(await freshSessions(pool, supply), workers),
      finish: () => dropSupply(pool, 'user_sessions', 'user_id'),
      step: async (s) => {
        const id = take(s);
        return (
          id !== undefined &&
          expect(await store.deleteWithEvent(id, 'logout', CLIENT_CONTEXT), 'logout deleted nothing')
        );
      },
    },
  };
}

/** connect-pg-simple's `session` table, as bench/run.js creates it (its table.sql, without OIDS). */
export async function createPeerTable(pool, rows) {
  await pool.query(`CREATE TABLE "session" ("sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL,
    "expire" timestamp(6) NOT NULL, CONSTRAINT "session_pkey" PRIMARY KEY ("sid"))`);
  await pool.query(`CREATE INDEX "IDX_session_expire" ON "session" ("expire")`);
  await pool.query(
    `INSERT INTO "session" (sid, sess, expire)
     SELECT 'bench-' || g, json_build_object('cookie', json_build_object('originalMaxAge', 1800000,
              'expires', now() + interval '30 minutes', 'secure', true, 'httpOnly', true, 'path', '/',
              'sameSite', 'lax'), 'userId', 'user-' || g),
            now() + interval '30 minutes'
     FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query('VACUUM ANALYZE "session"');
}

/** What express-session hands its store: the cookie plus the app's fields. */
const peerSession = (userId, extra = {}) => ({
  cookie: {
    originalMaxAge: IDLE_MS,
    expires: new Date(Date.now() + IDLE_MS),
    secure: true,
    httpOnly: true,
    path: '/',
    sameSite: 'lax',
  },
  userId,
  ...extra,
});
const newSid = () => randomBytes(24).toString('base64url'); // express-session's uid-safe(24)

/**
 * connect-pg-simple (`store`, a PGStore on its own pool): `set` for a login and for a data
 * change (it writes the whole object), `touch`, `destroy` for logout and revoke, and
 * express-session's `regenerate` (destroy the old sid, set a new one) for rotation.
 */
export function peerOps(store, pool, { rowsPerWorker = 200, supply = 20_000 } = {}) {
  const get = promisify(store.get.bind(store));
  const set = promisify(store.set.bind(store));
  const touch = promisify(store.touch.bind(store));
  const destroy = promisify(store.destroy.bind(store));
  const sampled = async (workers) => {
    const { rows } = await pool.query(
      `SELECT sid FROM "session" WHERE sid LIKE 'bench-%' AND expire > now() ORDER BY random() LIMIT $1`,
      [workers * rowsPerWorker],
    );
    return deal(
      rows.map((r) => ({ sid: r.sid, userId: `user-${r.sid.slice(6)}` })),
      workers,
    );
  };
  const fresh = async (workers) => {
    const tag = `supply-${randomBytes(4).toString('hex')}-`;
    const { rows } = await pool.query(
      `INSERT INTO "session" (sid, sess, expire)
       SELECT $1 || g, json_build_object('cookie', json_build_object('originalMaxAge', 1800000), 'userId', $1 || g),
              now() + interval '30 minutes'
       FROM generate_series(1, $2::int) g RETURNING sid`,
      [tag, supply],
    );
    return supplyStates(
      rows.map((r) => r.sid),
      workers,
    );
  };
  const dropPeerSupply = () => dropSupply(pool, '"session"', 'sid');
  return {
    lookup: {
      label: 'get',
      prepare: sampled,
      step: async (s) => expect(await get(nextRow(s).sid), 'get found nothing'),
    },
    create: {
      label: 'set (new sid)',
      prepare: async (workers) => Array.from({ length: workers }, (_, w) => ({ w, n: 0 })),
      step: async (s) => (await set(newSid(), peerSession(`login-${s.w}-${s.n++}`)), true),
    },
    touch: {
      label: 'touch',
      prepare: sampled,
      step: async (s) => {
        const row = nextRow(s);
        return (await touch(row.sid, peerSession(row.userId)), true);
      },
    },
    rotate: {
      label: 'regenerate (destroy + set)',
      prepare: sampled,
      step: async (s) => {
        const row = nextRow(s);
        await destroy(row.sid);
        row.sid = newSid();
        await set(row.sid, peerSession(row.userId));
        return true;
      },
    },
    patch: {
      label: 'set (whole object)',
      prepare: sampled,
      step: async (s) => {
        const row = nextRow(s);
        return (await set(row.sid, peerSession(row.userId, { cartItems: s.next })), true);
      },
    },
    revoke: { label: 'destroy', prepare: fresh, step: (s) => peerDestroy(destroy, s), finish: dropPeerSupply },
    logout: { label: 'destroy', prepare: fresh, step: (s) => peerDestroy(destroy, s), finish: dropPeerSupply },
  };
}

async function peerDestroy(destroy, s) {
  const sid = take(s);
  if (sid === undefined) return false;
  await destroy(sid);
  return true;
}
