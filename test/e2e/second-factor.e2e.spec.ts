import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ModulesContainer } from '@nestjs/core';
import { createGuardrails, generate } from 'otplib';
import request from 'supertest';
import { DEMO_TOTP_SECRET } from '../../src/demo/users.service.js';
import { OPTIONAL_SESSION, PUBLIC_ROUTE } from '../../src/session/decorators/session.decorators.js';
import { SECOND_FACTOR_ROUTE } from '../../src/session/second-factor/second-factor.decorator.js';
import { hashToken } from '../../src/session/token/session-token.js';
import { ADAPTERS, cookie, login, sessionCookie, setCookieLine, startDemo, type RunningDemo } from '../support/demo.js';
import { refusal } from '../support/sockets.js';

const guardrails = createGuardrails({ MIN_SECRET_BYTES: 10 }); // the demo secret has 80 bits
const STEP_SECONDS = 30;
const currentStep = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);
const codeAt = (step: number) => generate({ secret: DEMO_TOTP_SECRET, epoch: step * STEP_SECONDS, guardrails });

/**
 * Valid codes for one demo instance, each of a later time step than the last (the demo refuses
 * a step it already accepted): the current step, then the next (inside the ±1 step window).
 */
function validCodes() {
  let used = -1;
  return async () => {
    const step = Math.max(currentStep(), used + 1);
    if (step > currentStep() + 1) throw new Error('no unused valid code in this time window');
    used = step;
    return codeAt(step);
  };
}

/** A code of a step far outside the window, different from every code the window accepts. */
async function wrongCode(): Promise<string> {
  const valid = await Promise.all([-1, 0, 1].map((d) => codeAt(currentStep() + d)));
  for (let back = 100; ; back++) {
    const code = await codeAt(currentStep() - back);
    if (!valid.includes(code)) return code;
  }
}

/** Every HTTP route of the running app that needs a session, from the controllers' own metadata. */
function guardedRoutes(demo: RunningDemo): Array<[string, string]> {
  const routes: Array<[string, string]> = [];
  const flag = (key: string, handler: object, controller: object) =>
    (Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, controller)) === true;
  for (const module of demo.app.get(ModulesContainer).values()) {
    for (const { metatype } of module.controllers.values()) {
      if (typeof metatype !== 'function') continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '');
      for (const name of methodNames(metatype.prototype)) {
        const handler = metatype.prototype[name] as object;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (name === 'constructor' || method === undefined) continue;
        const isPublic = flag(PUBLIC_ROUTE, handler, metatype) && !flag(OPTIONAL_SESSION, handler, metatype);
        if (isPublic || flag(SECOND_FACTOR_ROUTE, handler, metatype)) continue;
        const path = `/${[base, String(Reflect.getMetadata(PATH_METADATA, handler))].join('/')}`
          .replace(/\/+/g, '/')
          .replace(/\/$/, '')
          .replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000');
        routes.push([RequestMethod[method].toLowerCase(), path || '/']);
      }
    }
  }
  return routes;
}

/** Own and inherited method names (the admin API's controller is a subclass made for its path). */
function methodNames(prototype: object): Set<string> {
  const names = new Set<string>();
  for (let p = prototype; p !== Object.prototype; p = Object.getPrototypeOf(p))
    for (const name of Object.getOwnPropertyNames(p)) names.add(name);
  return names;
}

describe.each(ADAPTERS)('sessions waiting for a second factor in the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  let nextCode: () => Promise<string>;
  beforeAll(async () => {
    demo = await startDemo(adapter);
    await demo.app.listen(0, '127.0.0.1');
    nextCode = validCodes();
  });
  afterAll(async () => demo?.close());

  const sql = async (text: string, values: unknown[] = []) => (await demo.db.pool.query(text, values)).rows;
  const rowOf = async (token: string) =>
    (await sql('SELECT * FROM user_sessions WHERE token_hash = $1', [hashToken(token)]))[0];
  const auditOf = (sessionId: string) =>
    sql('SELECT event, user_id, actor_id, details FROM session_audit_log WHERE session_id = $1 ORDER BY id', [
      sessionId,
    ]);
  const loginCarol = async () => {
    const response = await request(demo.server)
      .post('/auth/login')
      .send({ username: 'carol', password: 'carol-password' })
      .expect(200);
    return { response, token: sessionCookie(response)! };
  };
  const verify = (token: string, code: string) =>
    request(demo.server).post('/auth/second-factor').set(cookie(token)).send({ code });

  it('the contract: login answers secondFactorRequired and a cookie; /me 401 until the code, then 200 under a new token', async () => {
    const { response, token } = await loginCarol();
    expect(response.body).toEqual({
      secondFactorRequired: true,
      expiresAt: expect.any(String),
      csrfToken: expect.any(String),
    });
    expect(setCookieLine(response)).toMatch(/HttpOnly/i);
    const pending = await rowOf(token);
    expect(pending).toMatchObject({ user_id: 'u-carol', second_factor_pending: true, second_factor_attempts: 0 });
    // Its own short lifetime: secondFactor.pendingTimeout (5m), idle and absolute alike.
    const lifetime = (pending.absolute_expires_at.getTime() - pending.created_at.getTime()) / 1000;
    expect(lifetime).toBeCloseTo(300, 0);
    expect(pending.idle_expires_at).toEqual(pending.absolute_expires_at);

    const refused = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(refused.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: expect.any(String),
      reason: 'second_factor_required',
    });
    expect(sessionCookie(refused)).toBeUndefined(); // refused, not ended: the cookie stays for the code

    // Logged in an hour ago, as far as freshness goes: completing must count as the authentication.
    await sql(`UPDATE user_sessions SET authenticated_at = now() - interval '1 hour' WHERE id = $1`, [pending.id]);
    const completed = await verify(token, await nextCode()).expect(200);
    const full = sessionCookie(completed)!;
    expect(full).toBeDefined();
    expect(full).not.toBe(token);
    expect(completed.body).toEqual({
      userId: 'u-carol',
      sessionId: pending.id,
      expiresAt: expect.any(String),
      csrfToken: expect.any(String),
    });
    const me = await request(demo.server).get('/me').set(cookie(full)).expect(200);
    expect(me.body).toMatchObject({ userId: 'u-carol', sessionId: pending.id });
    expect(me.body.secondFactorPending).toBeUndefined();

    // The pending token died at once: no grace, so whoever else held it rides nothing.
    const old = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(old.body.reason).toBe('invalid');
    await verify(token, await wrongCode()).expect(401);
    // Full lifetime of the profile, from completion; freshly authenticated for @RequireFreshSession.
    const upgraded = await rowOf(full);
    expect(upgraded).toMatchObject({ id: pending.id, second_factor_pending: false, second_factor_attempts: 0 });
    expect(upgraded.authenticated_at.getTime()).toBeGreaterThanOrEqual(pending.authenticated_at.getTime());
    // Past @RequireFreshSession() (403 is the wrong current password, not 401 reauth_required).
    await request(demo.server)
      .post('/me/password')
      .set(cookie(full))
      .send({ currentPassword: 'wrong-password', newPassword: 'carol-password-2' })
      .expect(403);
    expect(await auditOf(pending.id)).toEqual([
      expect.objectContaining({ event: 'created', actor_id: 'u-carol', details: { secondFactorPending: true } }),
      expect.objectContaining({ event: 'second_factor_completed', user_id: 'u-carol', actor_id: 'u-carol' }),
    ]);
  });

  it('a pending session reaches no guarded route, writes nothing, and opens no socket; the verification route works', async () => {
    const { token } = await loginCarol();
    const routes = guardedRoutes(demo);
    expect(routes.length).toBeGreaterThanOrEqual(18);
    expect(routes).toEqual(
      expect.arrayContaining([
        ['patch', '/me/data'],
        ['get', '/cart'],
        ['get', '/admin/sessions/audit'],
      ]),
    );
    for (const [method, path] of routes) {
      const refused = await (request(demo.server) as any)[method](path).set(cookie(token)).send({ anything: 1 });
      expect([method, path, refused.status, refused.body.reason]).toEqual([
        method,
        path,
        401,
        'second_factor_required',
      ]);
    }
    const row = await rowOf(token);
    expect(row).toMatchObject({ data: {}, second_factor_pending: true, revoked_at: null, second_factor_attempts: 0 });
    const port = (demo.server.address() as { port: number }).port;
    expect(await refusal(`ws://127.0.0.1:${port}/ws`, cookie(token))).toMatchObject({
      code: 4401,
      reason: 'second_factor_required',
    });
    // The marked route sees the pending session: a wrong code is its business (401 second_factor_failed).
    const wrong = await verify(token, await wrongCode()).expect(401);
    expect(wrong.body).toMatchObject({ reason: 'second_factor_failed', attemptsLeft: 4 });
  });

  it('expires on its own: past its pending timeout even the right code upgrades nothing', async () => {
    const { token } = await loginCarol();
    const { id } = await rowOf(token);
    await sql(
      `UPDATE user_sessions SET created_at = created_at - interval '5 minutes',
         idle_expires_at = idle_expires_at - interval '5 minutes', absolute_expires_at = absolute_expires_at - interval '5 minutes'
       WHERE id = $1`,
      [id],
    );
    const expired = await verify(token, await codeAt(currentStep())).expect(401);
    expect(expired.body.reason).toBe('absolute_timeout');
    expect(await sql('SELECT 1 FROM user_sessions WHERE id = $1', [id])).toEqual([]);
    expect((await auditOf(id)).map((a) => a.event)).toEqual(['created', 'expired_absolute']);
  });

  it('a replayed code upgrades nothing: one code, one login', async () => {
    const code = await nextCode();
    const first = await loginCarol();
    const full = sessionCookie(await verify(first.token, code).expect(200))!;
    const second = await loginCarol();
    const replayed = await verify(second.token, code).expect(401);
    expect(replayed.body).toMatchObject({ reason: 'second_factor_failed', attemptsLeft: 4 });
    const pending = await rowOf(second.token);
    expect(pending).toMatchObject({ second_factor_pending: true, second_factor_attempts: 1 });
    await request(demo.server).get('/me').set(cookie(second.token)).expect(401);
    // carol's device list shows someone mid-login with her password.
    const devices = await request(demo.server).get('/sessions').set(cookie(full)).expect(200);
    const listed = devices.body.find((d: { id: string }) => d.id === pending.id);
    expect(listed).toMatchObject({ secondFactorPending: true, current: false });
    expect(devices.body.find((d: { current: boolean }) => d.current).secondFactorPending).toBeUndefined();
  });

  it('completion on a full session or without one upgrades nothing (400 / 401)', async () => {
    const alice = await login(demo.server, 'alice');
    const full = await verify(alice.token, await wrongCode()).expect(400);
    expect(full.body.reason).toBe('second_factor_not_pending');
    expect(sessionCookie(full)).toBeUndefined();
    const none = await request(demo.server).post('/auth/second-factor').send({ code: '123456' }).expect(401);
    expect(none.body.reason).toBe('missing');
    expect((await auditOf(alice.sessionId)).map((a) => a.event)).toEqual(['created']);
  });

  it('5 wrong codes revoke the session (audited); concurrent guesses share the same 5 attempts', async () => {
    const { token } = await loginCarol();
    const { id } = await rowOf(token);
    for (const left of [4, 3, 2, 1]) {
      const failed = await verify(token, await wrongCode()).expect(401);
      expect(failed.body).toMatchObject({ reason: 'second_factor_failed', attemptsLeft: left });
    }
    const last = await verify(token, await wrongCode()).expect(401);
    expect(last.body).toMatchObject({ reason: 'revoked', attemptsLeft: 0 });
    expect(setCookieLine(last)).toMatch(/^__Host-sid=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i);
    const afterwards = await verify(token, await codeAt(currentStep())).expect(401);
    expect(afterwards.body.reason).toBe('revoked');
    expect(await sql('SELECT revoke_reason, second_factor_attempts FROM user_sessions WHERE id = $1', [id])).toEqual([
      { revoke_reason: 'second_factor_failed', second_factor_attempts: 5 },
    ]);
    const audit = await auditOf(id);
    expect(audit.map((a) => a.event)).toEqual(['created', ...Array(5).fill('second_factor_failed'), 'revoked']);
    expect(audit[5].details).toEqual({ attempts: 5, maxAttempts: 5 });
    expect(audit[6].details).toEqual({ reason: 'second_factor_failed' });

    // carol's failures so far leave the window: this part is about the per-session limit.
    await sql(
      `UPDATE session_audit_log SET occurred_at = occurred_at - interval '16 minutes' WHERE user_id = 'u-carol' AND event = 'second_factor_failed'`,
    );
    const racing = await loginCarol();
    const wrong = await wrongCode();
    const answers = await Promise.all(Array.from({ length: 12 }, () => verify(racing.token, wrong)));
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(401));
    const [raced] = await sql('SELECT revoked_at, second_factor_attempts FROM user_sessions WHERE token_hash = $1', [
      hashToken(racing.token),
    ]);
    expect(raced.second_factor_attempts).toBe(5);
    expect(raced.revoked_at).not.toBeNull();
  });
});

describe.each(ADAPTERS)('second factor with the bearer transport (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_TRANSPORT: 'bearer' });
  });
  afterAll(async () => demo?.close());

  it('the pending bearer token gets 401 second_factor_required; the code answers a new token that works', async () => {
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    const pending = await request(demo.server)
      .post('/auth/login')
      .send({ username: 'carol', password: 'carol-password' })
      .expect(200);
    expect(pending.body).toEqual({
      secondFactorRequired: true,
      expiresAt: expect.any(String),
      token: expect.any(String),
    });
    const refused = await request(demo.server).get('/me').set(bearer(pending.body.token)).expect(401);
    expect(refused.body.reason).toBe('second_factor_required');
    const completed = await request(demo.server)
      .post('/auth/second-factor')
      .set(bearer(pending.body.token))
      .send({ code: await codeAt(currentStep()) })
      .expect(200);
    expect(completed.body.token).toEqual(expect.any(String));
    expect(completed.body.token).not.toBe(pending.body.token);
    await request(demo.server).get('/me').set(bearer(completed.body.token)).expect(200);
    await request(demo.server).get('/me').set(bearer(pending.body.token)).expect(401);
  });
});
