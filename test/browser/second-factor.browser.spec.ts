import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { createGuardrails, generate } from 'otplib';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { DEMO_TOTP_SECRET } from '../../src/demo/users.service.js';
import { startDemo, type RunningDemo } from '../support/demo.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const describeBrowser = existsSync(CHROMIUM) ? describe : describe.skip;
const currentCode = () =>
  generate({ secret: DEMO_TOTP_SECRET, guardrails: createGuardrails({ MIN_SECRET_BYTES: 10 }) });

/** carol's two-step login on the demo page: the pending cookie, then the full one, both HttpOnly. */
describeBrowser('demo page: sign-in with a second factor in Chromium', () => {
  let demo: RunningDemo;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    const port = await freePort();
    demo = await startDemo('express', { PORT: String(port) });
    await demo.app.listen(port, '127.0.0.1');
    origin = `http://localhost:${port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('asks carol for her code after the password; a wrong code is refused, the right one signs her in under a new cookie', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(origin);
    await page.fill('input[name=username]', 'carol');
    await page.fill('input[name=password]', 'carol-password');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#second-factor:not([hidden])');
    expect(await page.isHidden('#account')).toBe(true);
    const sid = async () => (await context.cookies()).find((c) => c.name === '__Host-sid');
    const pending = await sid();
    expect(pending).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax' });

    // A reload keeps the half-finished login: /me says second_factor_required, the page asks again.
    await page.reload();
    await page.waitForSelector('#second-factor:not([hidden])');
    await page.fill('input[name=code]', (Number(await currentCode()) ^ 1).toString().padStart(6, '0'));
    await page.click('#second-factor button[type=submit]');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('second_factor_failed'));

    await page.fill('input[name=code]', await currentCode());
    await page.click('#second-factor button[type=submit]');
    await page.waitForSelector('#account:not([hidden])');
    expect(await page.textContent('#user')).toBe('u-carol');
    const full = await sid();
    expect(full?.value).not.toBe(pending?.value);
    expect(full).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('__Host-sid');
    await context.close();
  });
});
