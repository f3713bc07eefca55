import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import { generateToken } from '../../src/session/token/session-token.js';
import { ADAPTERS, cookie, login, startDemo, type RunningDemo } from '../support/demo.js';

const WINDOW_MS = 60_000;
/** Requests "from" a client address: the demo trusts X-Forwarded-For from loopback (TRUST_PROXY). */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

describe.each(ADAPTERS)('the admin audit API and what flood rows record (%s)', (adapter) => {
  let demo: RunningDemo;
  let admin: string;
  let aliceSession: string;
  // One /64 per adapter run, so the two runs never see each other's rows.
  const net = adapter === 'express' ? '2001:db8:e:1' : '2001:db8:f:1';

  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_FLOOD_WINDOW: `${WINDOW_MS}ms`, TRUST_PROXY: 'loopback' });
    admin = (await login(demo.server, 'admin', from('192.0.2.50'))).token;
    aliceSession = (await login(demo.server, 'alice', from(`${net}::1`))).sessionId;
    // Guesses from three addresses of one /64, with the attacker's chosen user agent last.
    const guess = (ip: string, userAgent: string) =>
      request(demo.server)
        .get('/me')
        .set(from(ip))
        .set('User-Agent', userAgent)
        .set(cookie(generateToken()))
        .expect(401);
    for (let i = 0; i < 3; i++) await guess(`${net}::2`, 'Mozilla/5.0 (seen first)');
    await guess(`${net}::3`, 'scanner/2.0');
    await guess(`${net}::4`, 'innocent-looking/1.0');
    // The window ends on the app's clock: the sweep writes the aggregated row.
    const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + WINDOW_MS + 100);
    try {
      await demo.app.get(AggregatedAuditLog).flush();
    } finally {
      clock.mockRestore();
    }
  });
  afterAll(async () => demo?.close());

  const audit = (query: Record<string, string>) =>
    request(demo.server).get('/admin/sessions/audit').query(query).set(cookie(admin));
  const events = async (ip: string) =>
    ((await audit({ ip }).expect(200)).body.items as Array<{ event: string; ip: string }>).map((i) => [i.event, i.ip]);

  it('finds the aggregated row of a /64 by the network and by any address in it', async () => {
    const aggregated = ['invalid_token', `${net}::/64`]; // as sourceOf() writes it
    const login = ['created', `${net}::1`];
    expect(await events(`${net}::/64`)).toEqual([aggregated, login]);
    expect(await events(`${net.toUpperCase()}:0:0:0:1`)).toEqual([aggregated, login]);
    expect(await events(`${net}::9`)).toEqual([aggregated]);
    expect(await events(`${net.replace(/1$/, '2')}::/64`)).toEqual([]);
    const byNetwork = (await audit({ ip: `${net}::/64`, events: 'created' }).expect(200)).body.items;
    expect(byNetwork).toEqual([expect.objectContaining({ sessionId: aliceSession, userId: 'u-alice' })]);
  });

  it("records every user agent of the window, and the last request's does not erase the others", async () => {
    const [row] = (await audit({ ip: `${net}::/64`, events: 'invalid_token' }).expect(200)).body.items;
    expect(row.userAgent).toBeNull();
    expect(row.details).toMatchObject({
      count: 5,
      user_agents: [
        { value: 'Mozilla/5.0 (seen first)', count: 3 },
        { value: 'scanner/2.0', count: 1 },
        { value: 'innocent-looking/1.0', count: 1 },
      ],
    });
  });

  it.each([
    ['2001:db8::/129', /ip must be an IPv4 or IPv6 address, or a network in CIDR notation/],
    ['192.0.2.0/33', /ip must be an IPv4 or IPv6 address, or a network in CIDR notation/],
    ['fe80::1%25eth0', /ip must be an IPv4 or IPv6 address, or a network in CIDR notation/],
  ])('answers 400 for ip=%s', async (ip, reason) => {
    const response = await audit({ ip }).expect(400);
    expect(response.body.message.join('\n')).toMatch(reason);
  });

  it('answers 400 to a forged cursor (the old unkeyed check) and to an edited one', async () => {
    const first = await audit({ limit: '1' }).expect(200);
    const [us, id, mac] = Buffer.from(first.body.nextCursor, 'base64url').toString().split('.');
    const encode = (text: string) => Buffer.from(text).toString('base64url');
    const edited = await audit({ limit: '1', cursor: encode(`${us}.${Number(id) - 1}.${mac}`) }).expect(400);
    expect(edited.body.message).toEqual([expect.stringMatching(/^cursor does not belong to this query/)]);
    const body = `${us}.${Number(id) - 1}`;
    const unkeyed = createHash('sha256')
      .update(`nps-audit-cursor\0${body}\0${JSON.stringify(Array(7).fill(null))}`)
      .digest('base64url');
    const forged = await audit({ limit: '1', cursor: encode(`${body}.${unkeyed}`) }).expect(400);
    expect(forged.body.message).toEqual([expect.stringMatching(/^cursor does not belong to this query/)]);
    await audit({ limit: '1', cursor: first.body.nextCursor }).expect(200);
  });
});
