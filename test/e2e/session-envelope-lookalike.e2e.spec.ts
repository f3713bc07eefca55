import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import {
  CurrentSession,
  SessionPrivacyService,
  SessionService,
  type ActiveSession,
  type SessionModuleOptions,
} from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, cookie, sessionCookie } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

/** An app that keeps a string the user types at the top level of its session data. */
@Controller('nick')
class NickController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @Post()
  @HttpCode(200)
  async set(@CurrentSession() session: ActiveSession, @Body() body: { nick: string }) {
    await this.sessions.patch(session, { nick: body.nick });
    return { ok: true };
  }

  @Get()
  get(@CurrentSession() session: ActiveSession) {
    return { nick: session.data.nick ?? null };
  }
}

const KEY = { id: '2026-12', key: randomBytes(32).toString('base64') };
/** Strings shaped exactly like envelopes: of an unknown key id, and of the configured one. */
const LOOKALIKES = [
  'v1.x.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA',
  `v1.${KEY.id}.${randomBytes(12).toString('base64url')}.${randomBytes(24).toString('base64url')}`,
];
const CONFIGS: [string, SessionModuleOptions['encryption']][] = [
  ['encryption not configured', undefined],
  ['encryption on', { keys: [KEY] }],
  ['encryption on, reading plaintext', { keys: [KEY], readPlaintext: true }],
  ['encryption winding down (encryptWrites: false)', { keys: [KEY], encryptWrites: false }],
];

describe.each(ADAPTERS)('a plain string shaped like an envelope is only ever a string (%s)', (adapter) => {
  let db: TestDatabase;
  const hosts: HostApp[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const host of hosts) await host.app.close();
    await db?.drop();
  });

  it.each(CONFIGS)('%s: the patch, every later request and the export keep the session', async (what, encryption) => {
    const host = await createHostApp({ url: db.url, adapter, controllers: [NickController], session: { encryption } });
    hosts.push(host);
    const userId = `${adapter}-${CONFIGS.findIndex(([name]) => name === what)}`;
    const login = await request(host.server).post('/login').query({ user: userId }).expect(200);
    const token = sessionCookie(login)!;
    for (const nick of LOOKALIKES) {
      await request(host.server)
        .post('/nick')
        .set(cookie(token))
        .set('x-csrf-token', login.body.csrfToken)
        .send({ nick })
        .expect(200);
      expect((await request(host.server).get('/nick').set(cookie(token)).expect(200)).body).toEqual({ nick });
      expect((await request(host.server).get('/me').set(cookie(token)).expect(200)).body).toEqual({ userId });
    }
    const exported = await host.app.get(SessionPrivacyService).exportUser(userId);
    expect(exported.sessions.map((s) => s.data)).toEqual([{ nick: LOOKALIKES.at(-1) }]);
    const { rows } = await db.pool.query('SELECT revoked_at FROM user_sessions WHERE user_id = $1', [userId]);
    expect(rows).toEqual([{ revoked_at: null }]);
  });
});
