// The benchmarks' sessions, shared by run.js, profile.mjs and hot-path-cpu.mjs: deterministic
// tokens (token i = base64url(sha256(int8 i)), 43 characters like generateToken()), and the
// same rows seeded in SQL from i, so seeding a million sessions sends no token over the wire.
import { createHash } from 'node:crypto';

export const BENCH_USER_AGENT = 'autocannon-bench';

/** 32 bytes (sha256 of int8 i) as base64url without padding: canonical, like generateToken(). */
export function tokenOf(i) {
  const n = Buffer.alloc(8);
  n.writeBigInt64BE(BigInt(i));
  return createHash('sha256').update(n).digest('base64url');
}

/** SHA-256 of a token, as the module stores it in token_hash. */
export const hashOf = (token) => createHash('sha256').update(token, 'utf8').digest();

/** The same token, computed in SQL from g (encode() pads with '=' and uses '+/'). */
const SQL_TOKEN = `rtrim(translate(encode(sha256(int8send(g)), 'base64'), '+/', '-_'), '=')`;

/**
 * Sessions 1..rows in user_sessions (in chunks of 1M): user `user-<i>`, last seen up to a
 * minute ago (so touches spread out), idle expiry 30 minutes after that, absolute in 11 hours.
 * Then checks that tokens 1..`verify` are found by hash. `progress(done)` after each chunk.
 */
export async function seedSessions(pool, rows, { verify = 50, progress } = {}) {
  const chunk = 1_000_000;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await pool.query(
      `
      INSERT INTO user_sessions (token_hash, user_id, data, created_at, last_seen_at, authenticated_at, rotated_at,
                                 idle_expires_at, absolute_expires_at, ip, user_agent)
      SELECT sha256(convert_to(${SQL_TOKEN}, 'UTF8')), 'user-' || g, '{"role":"user"}'::jsonb,
             now() - interval '1 hour', now() - (g % 60) * interval '1 second', now() - interval '1 hour', now(),
             now() - (g % 60) * interval '1 second' + interval '30 minutes', now() + interval '11 hours', '127.0.0.1', $3
      FROM generate_series($1::bigint, $2::bigint) g`,
      [from, to, BENCH_USER_AGENT],
    );
    if (rows > chunk) progress?.(to);
  }
  await pool.query('VACUUM ANALYZE user_sessions');
  const hashes = Array.from({ length: Math.min(verify, rows) }, (_, k) => hashOf(tokenOf(k + 1)));
  const {
    rows: [found],
  } = await pool.query('SELECT count(*)::int AS n FROM user_sessions WHERE token_hash = ANY($1)', [hashes]);
  if (found.n !== hashes.length)
    throw new Error(`token check failed: ${found.n} of ${hashes.length} bench tokens found by hash`);
}
