// The capacity model of docs/scaling.md, computed from its inputs so the tables can be
// reproduced and re-run with other assumptions:
//
//   node bench/capacity-model.mjs                         (inputs from bench/results/write-path.json)
//   node bench/capacity-model.mjs --from=other.json --page-seconds=60 --session-hours=2 --instances=16
//   node bench/capacity-model.mjs --touch=300 --rotation=3600 --ttl=60 --sticky
//   node bench/capacity-model.mjs --remember=0.3 --visits-per-day=1 --guests-per-user-day=2
//
// Options' defaults are the module's DEFAULTS (src/session/session.options.ts); the traffic
// assumptions are stated in docs/scaling.md. Per-operation costs are the write-path bench's
// ops/s at its highest concurrency, notify off (on for the statements that notify with the
// cache on), and its measured bytes per row; audit retention by dropping a partition against
// deleting its rows from bench/results/partition-drop.json (bench/partition-drop.mjs), if run.
// The arithmetic is in bench/capacity-flows.mjs. Prints markdown.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flows, RETIRED_KEPT } from './capacity-flows.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const from = args.find((a) => a.startsWith('--from='))?.slice(7) ?? new URL('results/write-path.json', import.meta.url);

const o = {
  users: [100_000, 1_000_000, 10_000_000],
  // Options (DEFAULTS): seconds.
  idle: flag('idle', 30 * 60),
  touch: flag('touch', 60), // min(60 s, idleTimeout / 10)
  rotation: flag('rotation', 15 * 60),
  ttl: flag('ttl', 5),
  retentionDays: flag('retention-days', 90),
  purgeEvery: flag('purge-every', 5 * 60),
  // Traffic (assumptions): a page view every 30 s per active user, 4 requests per page view
  // (within a second, well inside the cache TTL), sessions of 1 hour from login to the last
  // request, a tenth ended by logout and the rest by idle expiry (purged), one session per user.
  pageSeconds: flag('page-seconds', 30),
  requestsPerPage: flag('requests-per-page', 4),
  sessionHours: flag('session-hours', 1),
  logoutShare: flag('logout-share', 0.1),
  patchesPerHour: flag('patches-per-hour', 0),
  // Remember me: the share of logins choosing a 30-day profile (the demo's 'remember': idle 7 d,
  // absolute 30 d), whose users come back `visitsPerDay` times a day (each visit sessionHours).
  remember: flag('remember', 0),
  rememberDays: flag('remember-days', 30),
  visitsPerDay: flag('visits-per-day', 1),
  // Guests (off by default): guest sessions started per day per active user, each used for
  // guestMinutes, then idle-expired after guests.idleTimeout (20 min) and purged.
  guestsPerUserDay: flag('guests-per-user-day', 0),
  guestMinutes: flag('guest-minutes', 5),
  guestIdle: flag('guest-idle', 20 * 60),
  instances: flag('instances', 8),
  sticky: args.includes('--sticky'),
};

if (!(o.ttl >= 1)) throw new Error('--ttl: the model assumes a burst of requests fits in the TTL: give 1 s or more');
if (!(o.remember >= 0 && o.remember <= 1)) throw new Error('--remember: a share of logins, 0..1');
if (!(o.visitsPerDay >= 1 / 7))
  throw new Error('--visits-per-day: at least one visit a week, or a remembered row idles out');
const measured = JSON.parse(readFileSync(from, 'utf8'));
const top = Math.max(...measured.cases.map((c) => c.concurrency));
/** ops/s measured at the highest concurrency; `notify`: the notify-on figure. */
const capacity = (op, notify = false) => {
  const c = measured.cases.find((x) => x.op === op && x.concurrency === top);
  if (!c) throw new Error(`no '${op}' case at concurrency ${top} in ${from}`);
  return (notify && c.on ? c.on : c.off).opsPerSec;
};
/** The batched purge's sustained rows/s at the default duty cycle (bench/purge-bench.mjs, in latest.json), if run. */
const purgeRate = (() => {
  try {
    const bench = JSON.parse(readFileSync(new URL('results/latest.json', import.meta.url), 'utf8'));
    return flag('purge-rows-per-sec', bench.purge?.batched?.rowsPerSecond);
  } catch {
    return flag('purge-rows-per-sec', undefined);
  }
})();
const bytesPerRow = (table) => measured.sizes.tables.find((t) => t.table === table).totalBytesPerRow;

const fmt = (x) =>
  x >= 100 ? Math.round(x).toLocaleString('en') : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2);
const bytes = (b) => {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let k = 0;
  for (; b >= 1000 && k < units.length - 1; k++) b /= 1000;
  return `${b >= 100 ? Math.round(b) : b.toFixed(1)} ${units[k]}`;
};
const duration = (s) => (s >= 3600 ? `${fmt(s / 3600)} h` : s >= 60 ? `${fmt(s / 60)} min` : `${fmt(s)} s`);
const rows = o.users.map((n) => flows(o, n));
const head = `| | ${o.users.map((n) => `${n.toLocaleString('en')} users`).join(' | ')} |\n|---|${o.users.map(() => '---:').join('|')}|`;
const line = (label, f) => `| ${label} | ${rows.map((r) => f(r)).join(' | ')} |`;
/** Share of this machine's measured capacity for that statement at `top` clients. */
const load = (rate, op, notify) => `${fmt(rate)} (${fmt(rate / capacity(op, notify))}×)`;

/** Weekly partitions at the retention: the weeks a row may still be in (a week is dropped whole), the one ahead, DEFAULT. */
const weeksHeld = Math.ceil(o.retentionDays / 7) + 1;
const drop = (() => {
  try {
    return JSON.parse(readFileSync(new URL('results/partition-drop.json', import.meta.url), 'utf8'));
  } catch {
    return undefined; // bench/partition-drop.mjs not run: the drop/delete line is left out
  }
})();
const weekRows = (r) => r.auditRowsPerDay * 7;

const out = [];
out.push(
  `Inputs: idle ${o.idle / 60} min, touch ${o.touch} s, rotation ${o.rotation / 60} min, cache TTL ${o.ttl} s, ` +
    `audit retention ${o.retentionDays} d, purge every ${o.purgeEvery / 60} min; a page view every ${o.pageSeconds} s ` +
    `of ${o.requestsPerPage} requests, sessions of ${o.sessionHours} h, ${o.logoutShare * 100}% logout, ` +
    `${o.patchesPerHour} patches/h, ${o.sticky ? 'sticky load balancing' : `${o.instances} instances, round-robin`}; ` +
    `${o.remember * 100}% of logins remembered (${o.rememberDays} d, ${o.visitsPerDay} visit/day), ` +
    `${o.guestsPerUserDay} guest sessions per active user per day (${o.guestMinutes} min, idle ${o.guestIdle / 60} min).`,
  `Per-operation capacity: ${relative(process.cwd(), typeof from === 'string' ? from : fileURLToPath(from))}, ${top} clients, ${measured.server.line}. ` +
    '(n×) = that rate over what this machine sustained for that statement alone.',
  '',
  '**SQL per second**',
  '',
  head,
  line('requests (= lookups, no cache)', (r) => load(r.requests, 'lookup')),
  line(`lookups, cache on (${o.sticky ? 'sticky' : `${o.instances} instances`})`, (r) =>
    load(r.lookupsCached, 'lookup'),
  ),
  ...(o.sticky
    ? []
    : [
        line('lookups, cache on, sticky load balancing', (r) => load(r.lookupsSticky, 'lookup')),
        line('lookups, cache on, sticky, TTL 60 s', (r) => load(r.lookupsSticky60, 'lookup')),
      ]),
  line('touches (UPDATE)', (r) => load(r.touches, 'touch')),
  line('rotations, notify off', (r) => load(r.rotations, 'rotate')),
  line('rotations, notify on', (r) => load(r.rotations, 'rotate', true)),
  line('logins (create)', (r) => load(r.logins, 'create')),
  ...(o.guestsPerUserDay ? [line('guest sessions started (create)', (r) => load(r.guestStarts, 'create'))] : []),
  line('logouts, notify on', (r) => load(r.logouts, 'logout', true)),
  line('notifying commits, cache on', (r) => load(r.notifying, 'rotate', true)),
  line('audit rows written (by the statements above and the purge)', (r) => fmt(r.auditPerSec)),
  line('retired-token rows written (one per rotation, same statement)', (r) => fmt(r.rotations)),
  line(
    `purge deletes (avg; per ${o.purgeEvery / 60}-min run)`,
    (r) => `${fmt(r.purgeDeletesPerSec)} (${fmt(r.purgeRowsPerRun)})`,
  ),
  line('retired-token rows deleted with their session (cascade; past the cap)', (r) =>
    r.retiredCapDeletes
      ? `${fmt(r.retiredCascadeDeletes)} (${fmt(r.retiredCapDeletes)})`
      : fmt(r.retiredCascadeDeletes),
  ),
  ...(purgeRate
    ? [
        line(
          `purge run time per tick at ${fmt(purgeRate)} rows/s (dutyCycle 0.1)`,
          (r) => `${fmt(r.purgeRowsPerRun / purgeRate)} s of ${o.purgeEvery} s`,
        ),
      ]
    : []),
  '',
  '**Rows and bytes**',
  '',
  head,
  line('user_sessions: inserts per day', (r) => fmt(r.sessionInsertsPerDay)),
  line('user_sessions: rows held', (r) => fmt(r.sessionRows)),
  line(`user_sessions: size (${bytesPerRow('user_sessions')} B/row)`, (r) =>
    bytes(r.sessionRows * bytesPerRow('user_sessions')),
  ),
  line(
    'session_retired_tokens: rows held',
    (r) => `${fmt(r.retiredRows)} (${fmt(r.retiredRows / r.sessionRows)}/session)`,
  ),
  line(`session_retired_tokens: size (${bytesPerRow('session_retired_tokens')} B/row)`, (r) =>
    bytes(r.retiredRows * bytesPerRow('session_retired_tokens')),
  ),
  line('audit: rows per day', (r) => fmt(r.auditRowsPerDay)),
  line(`audit: bytes per day (${bytesPerRow('session_audit_log')} B/row)`, (r) =>
    bytes(r.auditRowsPerDay * bytesPerRow('session_audit_log')),
  ),
  line(
    'audit: one weekly partition, rows (bytes)',
    (r) => `${fmt(weekRows(r))} (${bytes(weekRows(r) * bytesPerRow('session_audit_log'))})`,
  ),
  line(`audit: held at ${o.retentionDays} d retention (up to ${o.retentionDays + 7} d of rows)`, (r) =>
    bytes(r.auditRowsPerDay * (o.retentionDays + 7) * bytesPerRow('session_audit_log')),
  ),
  ...(drop
    ? [
        line(
          `audit: deleting a week's rows at ${fmt(drop.deleteInBatches.rowsPerSecond)} rows/s (a DROP: ${drop.dropPartition.ms} ms)`,
          (r) => duration(weekRows(r) / drop.deleteInBatches.rowsPerSecond),
        ),
        line(`audit: WAL of that delete and its VACUUM (a DROP: ${bytes(drop.dropPartition.walBytes)})`, (r) =>
          bytes((weekRows(r) * (drop.deleteInBatches.walBytes + drop.vacuumAfter.walBytes)) / drop.rowsPerPartition),
        ),
      ]
    : []),
  '',
  `Audit partitions at ${o.retentionDays} d retention: ${weeksHeld - 1}–${weeksHeld} weeks with rows, one ahead and DEFAULT. ` +
    `${Math.round(rows[0].rememberedVisitShare * 100)}% of visits on remembered rows; ` +
    `a remembered session rotates ${fmt(rows[0].rotationsPerRemembered)} times in ${o.rememberDays} d of ` +
    `${o.visitsPerDay} ${o.sessionHours}-h visit/day (${fmt((o.rememberDays * 86_400) / o.rotation)} if in use throughout); ` +
    `${RETIRED_KEPT} retired hashes are kept per session.`,
);
process.stdout.write(`${out.join('\n')}\n`);
