// The capacity model of docs/scaling.md, computed from its inputs so the tables can be
// reproduced and re-run with other assumptions:
//
//   node bench/capacity-model.mjs                         (inputs from bench/results/write-path.json)
//   node bench/capacity-model.mjs --from=other.json --page-seconds=60 --session-hours=2 --instances=16
//   node bench/capacity-model.mjs --touch=300 --rotation=3600 --ttl=60 --sticky
//
// Options' defaults are the module's DEFAULTS (src/session/session.options.ts); the traffic
// assumptions are stated in docs/scaling.md. Per-operation costs are the write-path bench's
// ops/s at its highest concurrency, notify off (on for the statements that notify with the
// cache on), and its measured bytes per row. Prints markdown.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  instances: flag('instances', 8),
  sticky: args.includes('--sticky'),
};

if (!(o.ttl >= 1)) throw new Error('--ttl: the model assumes a burst of requests fits in the TTL: give 1 s or more');
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

/**
 * Lookups per second per user with the cache: per (session, instance), a miss per TTL-separated
 * burst. Assumes a page view's requests arrive within the TTL (all but the first on an instance
 * hit), so it holds for a TTL of a second or more.
 */
function cachedLookupsPerUser({ sticky = o.sticky, ttl = o.ttl } = {}) {
  const p = 1 / o.pageSeconds;
  const instances = sticky ? 1 : o.instances;
  const q = 1 - (1 - 1 / instances) ** o.requestsPerPage; // chance a page view's requests reach a given instance
  const rate = p * q; // bursts per second reaching one instance
  return instances * (rate / (1 + rate * ttl)); // renewal: after a miss, hits for TTL, then the next burst misses
}

function model(n) {
  const requests = (n * o.requestsPerPage) / o.pageSeconds;
  const logins = n / (o.sessionHours * 3600); // Little's law: n live-in-use sessions, each lasting sessionHours
  const ends = logins;
  const rotations = n / o.rotation; // an active session rotates once per interval
  const touches = n / Math.max(o.touch, o.pageSeconds); // a touch at the first request past the interval
  const patches = (n * o.patchesPerHour) / 3600;
  const logouts = ends * o.logoutShare;
  const purged = ends - logouts;
  const lookupsCached = n * cachedLookupsPerUser();
  const lookupsSticky = n * cachedLookupsPerUser({ sticky: true });
  const lookupsSticky60 = n * cachedLookupsPerUser({ sticky: true, ttl: 60 });
  const auditPerSec = logins + rotations + logouts + purged;
  const auditRowsPerDay = auditPerSec * 86_400;
  // Rows in user_sessions: the sessions in use, plus ended ones waiting out the idle timeout (and half a purge period).
  const sessionRows = n + purged * (o.idle + o.purgeEvery / 2);
  return {
    n,
    requests,
    lookups: requests,
    lookupsCached,
    lookupsSticky,
    lookupsSticky60,
    touches,
    rotations,
    logins,
    logouts,
    patches,
    auditPerSec,
    purgeDeletesPerSec: purged,
    purgeRowsPerRun: purged * o.purgeEvery,
    notifying: rotations + logouts + patches, // with the cache on (revokes: rare, left out)
    sessionRows,
    sessionBytes: sessionRows * bytesPerRow('user_sessions'),
    sessionInsertsPerDay: logins * 86_400,
    auditRowsPerDay,
    auditBytesPerDay: auditRowsPerDay * bytesPerRow('session_audit_log'),
  };
}

const fmt = (x) =>
  x >= 100 ? Math.round(x).toLocaleString('en') : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2);
const bytes = (b) => {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let k = 0;
  for (; b >= 1000 && k < units.length - 1; k++) b /= 1000;
  return `${b >= 100 ? Math.round(b) : b.toFixed(1)} ${units[k]}`;
};
const rows = o.users.map(model);
const head = `| | ${o.users.map((n) => `${n.toLocaleString('en')} users`).join(' | ')} |\n|---|${o.users.map(() => '---:').join('|')}|`;
const line = (label, f) => `| ${label} | ${rows.map((r) => f(r)).join(' | ')} |`;
/** Share of this machine's measured capacity for that statement at `top` clients. */
const load = (rate, op, notify) => `${fmt(rate)} (${fmt(rate / capacity(op, notify))}×)`;

const out = [];
out.push(
  `Inputs: idle ${o.idle / 60} min, touch ${o.touch} s, rotation ${o.rotation / 60} min, cache TTL ${o.ttl} s, ` +
    `audit retention ${o.retentionDays} d, purge every ${o.purgeEvery / 60} min; a page view every ${o.pageSeconds} s ` +
    `of ${o.requestsPerPage} requests, sessions of ${o.sessionHours} h, ${o.logoutShare * 100}% logout, ` +
    `${o.patchesPerHour} patches/h, ${o.sticky ? 'sticky load balancing' : `${o.instances} instances, round-robin`}.`,
  `Per-operation capacity: ${relative(process.cwd(), typeof from === 'string' ? from : fileURLToPath(from))}, ${top} clients, ${measured.server.line}. ` +
    '(n×) = that rate over what this machine sustained for that statement alone.',
  '',
  '**SQL per second**',
  '',
  head,
  line('requests (= lookups, no cache)', (r) => load(r.lookups, 'lookup')),
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
  line('logouts, notify on', (r) => load(r.logouts, 'logout', true)),
  line('notifying commits, cache on', (r) => load(r.notifying, 'rotate', true)),
  line('audit rows written (by the statements above and the purge)', (r) => fmt(r.auditPerSec)),
  line(
    `purge deletes (avg; per ${o.purgeEvery / 60}-min run)`,
    (r) => `${fmt(r.purgeDeletesPerSec)} (${fmt(r.purgeRowsPerRun)})`,
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
  line(`user_sessions: size (${bytesPerRow('user_sessions')} B/row)`, (r) => bytes(r.sessionBytes)),
  line('audit: rows per day', (r) => fmt(r.auditRowsPerDay)),
  line(`audit: bytes per day = daily partition (${bytesPerRow('session_audit_log')} B/row)`, (r) =>
    bytes(r.auditBytesPerDay),
  ),
  line('audit: weekly partition', (r) => bytes(r.auditBytesPerDay * 7)),
  line(`audit: held at ${o.retentionDays} d retention`, (r) => bytes(r.auditBytesPerDay * o.retentionDays)),
);
process.stdout.write(`${out.join('\n')}\n`);
