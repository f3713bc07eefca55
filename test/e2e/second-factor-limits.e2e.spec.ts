import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createGuardrails, generate } from 'otplib';
import request from 'supertest';
import { DEMO_TOTP_SECRET } from '../../src/demo/users.service.js';
import { ADAPTERS, cookie, sessionCookie, type RunningDemo, startDemo } from '../support/demo.js';

const guardrails = createGuardrails({ MIN_SECRET_BYTES: 10 }); // the demo secret has 80 bits
const STEP_SECONDS = 30;
const currentStep = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);
const codeAt = (step: number) => generate({ secret: DEMO_TOTP_SECRET, epoch: step * STEP_SECONDS, guardrails });

/** A code of a step far outside the window, different from every code the window accepts. */
async function wrongCode(): Promise<string> {
  const valid = await Promise.all([-1, 0, 1].map((d) => codeAt(currentStep() + d)));
  for (let back = 100; ; back++) {
    const code = await codeAt(currentStep() - back);
    if (!valid.includes(code)) return code;
  }
}

/** What knowing carol's password without her second factor must not buy (demo: 2 sessions per user). */
describe.each(ADAPTERS)('the second factor under the demo limits (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_MAX_PER_USER: '2' });
  });
  afterAll(async () => demo?.close());

  const sql = async (text: string, values: unknown[] = []) => (await demo.db.pool.query(text, values)).rows;
  const loginCarol = async () =>
    sessionCookie(
      await request(demo.server)
        .post('/auth/login')
        .send({ username: 'carol', password: 'carol-password' })
        .expect(200),
    )!;
  const verify = (token: string, code: string) =>
    request(demo.server).post('/auth/second-factor').set(cookie(token)).send({ code });

  it('password-only logins log none of carol out (they neither count nor evict)', async () => {
    const a = sessionCookie(await verify(await loginCarol(), await codeAt(currentStep())).expect(200))!;
    const b = sessionCookie(await verify(await loginCarol(), await codeAt(currentStep() + 1)).expect(200))!;
    await loginCarol();
    await loginCarol();
    await request(demo.server).get('/me').set(cookie(a)).expect(200);
    await request(demo.server).get('/me').set(cookie(b)).expect(200);
    expect(
      await sql(
        `SELECT 1 FROM user_sessions WHERE user_id = 'u-carol' AND revoke_reason = 'limit_evicted' AND NOT second_factor_pending`,
      ),
    ).toEqual([]);
  });

  it('new logins buy no new guesses: after 10 failures across logins, 401 second_factor_locked until the window frees one', async () => {
    for (let login = 0; login < 2; login++) {
      const token = await loginCarol();
      for (let i = 0; i < 5; i++) await verify(token, await wrongCode()).expect(401);
    }
    const third = await loginCarol(); // the password step still works
    const locked = await verify(third, await codeAt(currentStep())).expect(401);
    expect(locked.body).toMatchObject({ reason: 'second_factor_locked', retryAfterSeconds: expect.any(Number) });
    expect(locked.body.message).toMatch(/log in again in \d+ s/);
    await request(demo.server).get('/me').set(cookie(third)).expect(401);
    expect(
      await sql(
        `SELECT count(*)::int AS n FROM session_audit_log WHERE user_id = 'u-carol' AND event = 'second_factor_failed'`,
      ),
    ).toEqual([{ n: 10 }]);

    await sql(
      `UPDATE session_audit_log SET occurred_at = occurred_at - interval '16 minutes' WHERE user_id = 'u-carol'`,
    );
    const fresh = await loginCarol();
    expect((await verify(fresh, await wrongCode()).expect(401)).body).toMatchObject({
      reason: 'second_factor_failed',
      attemptsLeft: 4,
    });
  });
});

describe.each(ADAPTERS)("the demo's account limiter counts wrong codes (%s)", (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { ACCOUNT_RATE_LIMIT: '3' });
  });
  afterAll(async () => demo?.close());

  it('3 wrong codes spend carol’s 3 password attempts: the next login with the right password is 429', async () => {
    const login = () =>
      request(demo.server).post('/auth/login').send({ username: 'carol', password: 'carol-password' });
    const token = sessionCookie(await login().expect(200))!;
    for (let i = 0; i < 3; i++)
      await request(demo.server)
        .post('/auth/second-factor')
        .set(cookie(token))
        .send({ code: await wrongCode() })
        .expect(401);
    const refused = await login().expect(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });
});
