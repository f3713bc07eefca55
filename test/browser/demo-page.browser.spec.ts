import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { startDemo, type RunningDemo } from '../support/demo.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`[browser tests] skipped: no Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium)`);
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const describeBrowser = haveChromium ? describe : describe.skip;

/** Real cookie behaviour in headless Chromium against the demo app listening on localhost. */
describeBrowser('demo page in Chromium', () => {
  let demo: RunningDemo;
  let browser: Browser;
  let origin: string;
  let attacker: Server;
  let attackerOrigin: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The demo allows its own origins (http://localhost:PORT, http://127.0.0.1:PORT) for CSRF checks.
    const port = await freePort();
    demo = await startDemo('express', { PORT: String(port) });
    await demo.app.listen(port, '127.0.0.1');
    origin = `http://localhost:${port}`;
    // A second origin (a different site: 127.0.0.1 vs localhost) that tries a cross-site form POST.
    attacker = createServer((_, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id="f" method="POST" action="${origin}/sessions/revoke-others"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await demo?.close();
  });

  async function signIn(context: BrowserContext, username: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(origin);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', `${username}-password`);
    await page.click('button[type=submit]');
    await page.waitForSelector('#account:not([hidden])');
    return page;
  }

  it('signs in through the form with a cookie scripts cannot read, and stays signed in on reload', async () => {
    const context = await browser.newContext();
    const form = await context.newPage();
    await form.goto(origin);
    await form.waitForSelector('#login:not([hidden])');
    await form.screenshot({ path: `${ARTIFACTS}sign-in-form.png`, fullPage: true });
    await form.close();
    const page = await signIn(context, 'alice');
    expect(await page.textContent('#user')).toBe('u-alice');
    // The device list names the browser in words (bowser; the raw user agent is the tooltip) and marks this one.
    const device = page.locator('#sessions tbody tr td').first();
    expect(await device.textContent()).toMatch(/^Chrome \d+ on Linuxthis device$/);
    expect(await device.getAttribute('title')).toMatch(/HeadlessChrome\/\d+/);
    expect(await page.evaluate(() => document.cookie)).not.toContain('__Host-sid');

    const [cookie] = (await context.cookies()).filter((c) => c.name === '__Host-sid');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', domain: 'localhost' });
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await page.screenshot({ path: `${ARTIFACTS}signed-in.png`, fullPage: true });

    await page.reload();
    await page.waitForSelector('#account:not([hidden])');
    expect(await page.textContent('#user')).toBe('u-alice');
    await context.close();
  });

  it('revokes another device from the list; that device is refused next time', async () => {
    const laptop = await browser.newContext();
    const phone = await browser.newContext({ userAgent: IPHONE });
    const laptopPage = await signIn(laptop, 'bob');
    const phonePage = await signIn(phone, 'bob');
    await laptopPage.reload();
    await laptopPage.waitForSelector('#sessions tbody tr button.revoke');
    const phoneSessionId = (await phonePage.textContent('#session-id'))!.match(/session ([0-9a-f-]{36})/)![1];
    const phoneRow = laptopPage.locator(`#sessions tbody tr[data-session-id="${phoneSessionId}"] td`).first();
    expect(await phoneRow.textContent()).toBe('Safari 17 on iOS');
    await laptopPage.screenshot({ path: `${ARTIFACTS}devices.png`, fullPage: true });
    await laptopPage.click(`#sessions tbody tr[data-session-id="${phoneSessionId}"] button.revoke`);
    await laptopPage.waitForFunction((id) => !document.querySelector(`tr[data-session-id="${id}"]`), phoneSessionId);
    await laptopPage.screenshot({ path: `${ARTIFACTS}after-revoke.png`, fullPage: true });

    await phonePage.reload();
    await phonePage.waitForSelector('#login:not([hidden])');
    const status = await phonePage.evaluate(async () => (await fetch('/me')).status);
    expect(status).toBe(401);
    await laptopPage.reload();
    await laptopPage.waitForSelector('#account:not([hidden])');
    await laptop.close();
    await phone.close();
  });

  it('keeps a cart filled before login, and remembers the device for 30 days when asked', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(origin);
    await page.waitForSelector('#login:not([hidden])');
    // A visitor's first write starts a guest session; the next one sends that session's CSRF token.
    const added = await page.evaluate(async () => {
      const headers = { 'content-type': 'application/json' };
      const first = await fetch('/cart', { method: 'PATCH', headers, body: JSON.stringify({ apples: 2 }) });
      const { csrfToken } = await first.json();
      const second = await fetch('/cart', {
        method: 'PATCH',
        headers: { ...headers, 'x-csrf-token': csrfToken },
        body: JSON.stringify({ pears: 1 }),
      });
      return [first.status, second.status, (await second.json()).cart];
    });
    expect(added).toEqual([200, 200, { apples: 2, pears: 1 }]);
    const [guest] = (await context.cookies()).filter((c) => c.name === '__Host-sid');

    await page.fill('input[name=username]', 'bob');
    await page.fill('input[name=password]', 'bob-password');
    await page.check('input[name=rememberMe]');
    await page.click('button[type=submit]');
    await page.waitForSelector('#account:not([hidden])');
    expect(await page.evaluate(async () => (await fetch('/me/data')).json())).toEqual({
      cart: { apples: 2, pears: 1 },
    });
    const [user] = (await context.cookies()).filter((c) => c.name === '__Host-sid');
    expect(user.value).not.toBe(guest.value);
    expect(user.expires - Date.now() / 1000).toBeGreaterThan(30 * 86_400 - 300);
    const { rows } = await demo.db.pool.query(
      `SELECT count(*)::int AS n FROM user_sessions WHERE user_id IS NULL AND revoked_at IS NULL`,
    );
    expect(rows[0].n).toBe(0); // the guest session ended at login
    await page.waitForSelector('#sessions tbody tr');
    expect(await page.locator('#sessions tbody tr td').nth(2).textContent()).toBe('remembered');
    await page.screenshot({ path: `${ARTIFACTS}remembered-with-cart.png`, fullPage: true });
    await context.close();
  });

  it("support access: an admin acts as alice, alice's device list shows it, and stop returns the admin", async () => {
    const aliceContext = await browser.newContext();
    const alice = await signIn(aliceContext, 'alice');
    const context = await browser.newContext();
    const page = await signIn(context, 'admin');
    const adminSessionId = (await page.textContent('#session-id'))!.match(/session ([0-9a-f-]{36})/)![1];
    // No button for it on the page: an admin tool would call the route, with the page's CSRF cookie.
    const status = await page.evaluate(async () => {
      const csrf = document.cookie.match(/(?:^|; )__Host-csrf=([^;]+)/)![1];
      const response = await fetch('/admin/users/u-alice/impersonate', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ reason: 'browser test' }),
      });
      return response.status;
    });
    expect(status).toBe(200);
    await page.reload();
    await page.waitForSelector('#impersonating:not([hidden])');
    expect(await page.textContent('#user')).toBe('u-alice');
    expect(await page.textContent('#impersonator')).toBe('u-admin');

    await alice.reload();
    await alice.waitForSelector('#sessions tbody tr .support');
    expect(await alice.textContent('#sessions tbody tr .support')).toBe('opened by support (u-admin)');
    await alice.screenshot({ path: `${ARTIFACTS}impersonated-devices.png`, fullPage: true });

    await page.click('#stop-impersonating');
    await page.waitForSelector('#impersonating', { state: 'hidden' });
    expect(await page.textContent('#user')).toBe('u-admin');
    expect(await page.textContent('#session-id')).toBe(`(session ${adminSessionId})`);
    await context.close();
    await aliceContext.close();
  });

  it('signs out: the cookie is gone from the browser', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'alice');
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    expect((await context.cookies()).filter((c) => c.name === '__Host-sid')).toEqual([]);
    await context.close();
  });

  it("a browser's WebSocket to /ws carries the cookie, answers whoami, and is closed with 4401 on sign-out", async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'alice');
    // A browser cannot set headers on a WebSocket: the session comes with the cookie (and Origin).
    const answer = await page.evaluate(
      () =>
        new Promise<string>((resolve, reject) => {
          const socket = new WebSocket(`ws://${location.host}/ws`);
          const w = window as unknown as { closedWith?: string };
          socket.onclose = (event) => (w.closedWith = `${event.code} ${event.reason}`);
          socket.onerror = () => reject(new Error('socket error'));
          socket.onmessage = (event) => resolve(String(event.data));
          socket.onopen = () => socket.send('whoami');
        }),
    );
    expect(answer).toBe('u-alice');
    await page.click('#logout');
    await page.waitForFunction(() => (window as unknown as { closedWith?: string }).closedWith !== undefined);
    expect(await page.evaluate(() => (window as unknown as { closedWith?: string }).closedWith)).toBe('4401 logout');
    await context.close();
  });

  it('a cross-site form POST from another origin does not act on the session', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, 'admin');
    const other = await signIn(await browser.newContext(), 'admin');
    const otherId = (await other.textContent('#session-id'))!.match(/session ([0-9a-f-]{36})/)![1];

    const evil = await context.newPage();
    const posted = evil.waitForResponse((r) => r.url().endsWith('/sessions/revoke-others'));
    await evil.goto(attackerOrigin);
    expect((await posted).status()).not.toBe(201);

    // The other admin session is still alive, and so is ours.
    const list: Array<{ id: string }> = await page.evaluate(async () => (await fetch('/sessions')).json());
    expect(list.map((s) => s.id)).toContain(otherId);
    await context.close();
  });
});
