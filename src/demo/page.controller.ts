import { Controller, Get, Header } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Public } from '../session/index.js';

/**
 * A small page for trying the demo in a browser: login, who am I, my devices (revoke one,
 * sign out everywhere else), logout. Plain HTML and one script file under a strict CSP; it
 * never sees the session cookie (HttpOnly), only the CSRF token the API hands out.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>nest-pg-session demo</title>
  <link rel="stylesheet" href="/app.css">
</head>
<body>
  <h1>nest-pg-session demo</h1>
  <form id="login">
    <label>Username <input name="username" autocomplete="username" required></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <label class="check"><input name="rememberMe" type="checkbox"> Remember me (30 days on this device)</label>
    <button type="submit">Sign in</button>
    <p class="hint">Demo users: alice, bob, admin, carol; each one's password is &lt;name&gt;-password. carol also needs a TOTP code (demo-only secret JBSWY3DPEHPK3PXP).</p>
  </form>
  <form id="second-factor" hidden>
    <label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required></label>
    <button type="submit">Verify</button> <button type="button" id="second-factor-cancel">Back</button>
    <p class="hint">Your password was right: enter the 6-digit code of your authenticator app.</p>
  </form>
  <section id="account" hidden>
    <p>Signed in as <strong id="user"></strong> <span id="session-id"></span></p>
    <p id="impersonating" hidden>Support access: <strong id="impersonator"></strong> is acting as this user. <button id="stop-impersonating">Stop impersonating</button></p>
    <button id="logout">Sign out</button>
    <button id="revoke-others">Sign out everywhere else</button>
    <h2>My sessions</h2>
    <table id="sessions"><thead><tr><th>Device</th><th>IP</th><th>Lifetime</th><th>Created</th><th>Last seen</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <p id="status" role="status"></p>
  <script src="/vendor/bowser.js"></script>
  <script src="/app.js"></script>
</body>
</html>`;

const SCRIPT = `'use strict';
let csrfToken = null;
const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (csrfToken && method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw Object.assign(new Error((data && (data.reason || data.message)) || response.statusText), { status: response.status });
  return data;
}

function cell(row, text) { const td = document.createElement('td'); td.textContent = text; row.appendChild(td); return td; }

/** 'Chrome 131 on Linux' from a user-agent string (bowser parses it); the raw string goes in the cell's tooltip. */
function device(userAgent) {
  if (!userAgent) return 'Unknown device';
  const { browser, os } = bowser.parse(userAgent);
  const name = browser.name ? browser.name + (browser.version ? ' ' + browser.version.split('.')[0] : '') : '';
  if (!name && !os.name) return userAgent.length > 40 ? userAgent.slice(0, 40) + '…' : userAgent;
  return (name || 'Browser') + (os.name ? ' on ' + os.name : '');
}

async function refresh() {
  try {
    const me = await api('GET', '/me');
    if (me.csrfToken) csrfToken = me.csrfToken;
    $('login').hidden = true;
    $('second-factor').hidden = true;
    $('account').hidden = false;
    $('user').textContent = me.userId;
    $('session-id').textContent = '(session ' + me.sessionId + ')';
    $('impersonating').hidden = !me.impersonator;
    $('impersonator').textContent = me.impersonator || '';
    const sessions = await api('GET', '/sessions');
    const body = $('sessions').querySelector('tbody');
    body.replaceChildren();
    for (const s of sessions) {
      const row = document.createElement('tr');
      row.dataset.sessionId = s.id;
      const name = cell(row, device(s.userAgent));
      name.title = s.userAgent || '';
      if (s.current) {
        const mark = document.createElement('span');
        mark.className = 'current';
        mark.textContent = 'this device';
        name.appendChild(mark);
      }
      if (s.secondFactorPending) {
        const mark = document.createElement('span');
        mark.className = 'support';
        mark.textContent = 'signing in: second factor pending';
        name.appendChild(mark);
      }
      if (s.impersonatedBy) {
        const mark = document.createElement('span');
        mark.className = 'support';
        mark.textContent = 'opened by support (' + s.impersonatedBy + ')';
        name.appendChild(mark);
      }
      cell(row, s.ip || '');
      cell(row, s.lifetime === 'remember' ? 'remembered' : 'this visit');
      cell(row, new Date(s.createdAt).toLocaleString());
      cell(row, new Date(s.lastSeenAt).toLocaleString());
      const action = cell(row, '');
      if (!s.current) {
        const button = document.createElement('button');
        button.textContent = 'Revoke';
        button.className = 'revoke';
        button.addEventListener('click', () => act(() => api('DELETE', '/sessions/' + encodeURIComponent(s.id)), 'Session revoked'));
        action.appendChild(button);
      }
      body.appendChild(row);
    }
  } catch (error) {
    // A pending session keeps its CSRF token for the code form; after a reload, from its cookie.
    const pending = error.message === 'second_factor_required';
    const csrfCookie = document.cookie.match(/(?:^|; )__Host-csrf=([^;]*)/);
    csrfToken = pending ? csrfToken || (csrfCookie && csrfCookie[1]) : null;
    $('login').hidden = pending;
    $('second-factor').hidden = !pending;
    $('account').hidden = true;
    if (error.status !== 401) status('Error: ' + error.message);
  }
}

async function act(action, done) {
  try { const message = await action(); status(typeof message === 'string' ? message : done); } catch (error) { status('Refused: ' + error.message); }
  await refresh();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act(async () => {
    const result = await api('POST', '/auth/login', { username: form.get('username'), password: form.get('password'), rememberMe: form.get('rememberMe') === 'on' });
    if (result.csrfToken) csrfToken = result.csrfToken;
    event.target.reset();
    if (result.secondFactorRequired) return 'Enter your code';
  }, 'Signed in');
});
$('second-factor').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act(async () => {
    const result = await api('POST', '/auth/second-factor', { code: form.get('code') });
    if (result.csrfToken) csrfToken = result.csrfToken;
    event.target.reset();
  }, 'Signed in');
});
// A new login replaces the pending session; it also expires by itself within minutes.
$('second-factor-cancel').addEventListener('click', () => { $('second-factor').hidden = true; $('login').hidden = false; });
$('logout').addEventListener('click', () => act(() => api('POST', '/auth/logout'), 'Signed out'));
$('stop-impersonating').addEventListener('click', () => act(async () => {
  const result = await api('POST', '/auth/stop-impersonating');
  if (result.csrfToken) csrfToken = result.csrfToken;
}, 'Back to your own session'));
$('revoke-others').addEventListener('click', () => act(async () => {
  const result = await api('POST', '/sessions/revoke-others');
  return 'Signed out ' + result.revoked + ' other session' + (result.revoked === 1 ? '' : 's');
}, 'Other sessions signed out'));
refresh();
`;

const STYLE = `body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 56rem; color: #222; }
form label { display: grid; grid-template-columns: 6rem 16rem; align-items: center; margin: .5rem 0; }
form label.check { display: block; }
input { font: inherit; padding: .25rem .4rem; border: 1px solid #888; border-radius: 4px; }
.hint { color: #666; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; font-size: .9rem; }
button { margin: .25rem .25rem .25rem 0; padding: .3rem .8rem; font: inherit; font-size: .9rem; border: 1px solid #888; border-radius: 4px; background: #f4f4f4; cursor: pointer; }
button:hover { background: #e8e8e8; }
button[type=submit] { margin-top: .5rem; }
button.revoke { color: #a40000; border-color: #d9a0a0; background: #fff5f5; }
td:last-child { text-align: right; }
.support { margin-left: .5rem; padding: .05rem .4rem; border-radius: 3px; background: #fdf0d8; color: #7a4b00; font-size: .8rem; }
.current { margin-left: .5rem; padding: .05rem .4rem; border-radius: 3px; background: #e3f1e3; color: #235c23; font-size: .8rem; }
#session-id { color: #666; font-size: .85rem; }
#status { color: #555; }`;

/** bowser's browser build (it defines `window.bowser`), served from this origin so the CSP holds. */
let bowserScript: string | undefined;
const readBowser = () =>
  (bowserScript ??= readFileSync(createRequire(import.meta.url).resolve('bowser/es5.js'), 'utf8'));

@Controller()
export class PageController {
  @Public()
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CSP)
  page(): string {
    return PAGE;
  }

  @Public()
  @Get('app.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  script(): string {
    return SCRIPT;
  }

  @Public()
  @Get('vendor/bowser.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  bowser(): string {
    return readBowser();
  }

  @Public()
  @Get('app.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  style(): string {
    return STYLE;
  }
}
