// The capacity model's arithmetic (bench/capacity-model.mjs reads the inputs and prints): rates
// and rows held for `n` concurrently active users, from the options and traffic assumptions `o`.
// Three kinds of session rows: default (a login per visit), remembered (a login choosing the
// 30-day profile, kept across visits) and guests (before login, when `guests` is on).

/** session_retired_tokens keeps a session's newest 64 retired hashes (RETIRED_TOKENS_KEPT). */
export const RETIRED_KEPT = 64;

/**
 * Retired hashes held by one kind of session, summed: `starts` sessions/s, each rotating `k`
 * times spread evenly over `active` s of use, then waiting `after` s (idle expiry, the purge)
 * holding what it has, until its row and, by the cascade, its retired rows go. Kept: at most 64.
 */
function retiredHeld(starts, k, active, after) {
  const kept = Math.min(RETIRED_KEPT, k);
  // Mean of min(64, k·t) over t in [0, 1): k/2 under the cap, else 64 − 64²/2k.
  const meanWhileActive = k <= RETIRED_KEPT ? k / 2 : RETIRED_KEPT - RETIRED_KEPT ** 2 / (2 * k);
  return starts * (active * meanWhileActive + after * kept);
}

/**
 * Cached lookups per second per user: per (session, instance), a miss per TTL-separated burst.
 * Assumes a page view's requests arrive within the TTL (all but the first on an instance hit),
 * so it holds for a TTL of a second or more.
 */
export function cachedLookupsPerUser(o, { sticky = o.sticky, ttl = o.ttl } = {}) {
  const p = 1 / o.pageSeconds;
  const instances = sticky ? 1 : o.instances;
  const q = 1 - (1 - 1 / instances) ** o.requestsPerPage; // chance a page view's requests reach a given instance
  const rate = p * q; // bursts per second reaching one instance
  return instances * (rate / (1 + rate * ttl)); // renewal: after a miss, hits for TTL, then the next burst misses
}

export function flows(o, n) {
  const visit = o.sessionHours * 3600; // s of use per visit
  const visits = n / visit; // visits begun per second (Little's law: n users mid-visit)
  // A remembered row serves `perRow` visits until its absolute timeout (the user returns within
  // its idle timeout); a share `remember` of logins choose it, so logins = visits / mean visits per login.
  const perRow = Math.max(1, o.rememberDays * o.visitsPerDay);
  const logins = visits / (1 - o.remember + o.remember * perRow);
  const defaultStarts = logins * (1 - o.remember);
  const rememberStarts = logins * o.remember;
  const guestStarts = (n * o.guestsPerUserDay) / 86_400;
  const wait = o.idle + o.purgeEvery / 2; // an idle-expired row until the purge deletes it
  const guestWait = o.guestIdle + o.purgeEvery / 2;

  // Rotations: one per interval of use, and a remembered row's each return visit (its token is old by then).
  const kDefault = visit / o.rotation;
  const kRemember = perRow * kDefault + (perRow - 1);
  const kGuest = (o.guestMinutes * 60) / o.rotation;
  const rotations = defaultStarts * kDefault + rememberStarts * kRemember + guestStarts * kGuest;
  const touches = n / Math.max(o.touch, o.pageSeconds) + rememberStarts * (perRow - 1); // a touch at the first request past the interval
  const patches = (n * o.patchesPerHour) / 3600;
  const logouts = defaultStarts * o.logoutShare; // remembered rows end at their absolute timeout
  const purged = defaultStarts - logouts + rememberStarts + guestStarts;

  const sessionRows =
    defaultStarts * visit + // default sessions in use
    (defaultStarts - logouts) * wait +
    rememberStarts * (o.rememberDays * 86_400 + o.purgeEvery / 2) +
    guestStarts * (o.guestMinutes * 60 + guestWait);
  const retiredRows =
    retiredHeld(defaultStarts, kDefault, visit, (1 - o.logoutShare) * wait) +
    retiredHeld(rememberStarts, kRemember, o.rememberDays * 86_400, o.purgeEvery / 2) +
    retiredHeld(guestStarts, kGuest, o.guestMinutes * 60, guestWait);
  // Every retired row goes: past the cap by the rotation's own DELETE, else with its session.
  const retiredCapDeletes = rememberStarts * Math.max(0, kRemember - RETIRED_KEPT);
  // Audit: created/guest_created, rotated, logout or purged (a guest upgraded at login writes
  // guest_upgraded instead of purged: the same count).
  const auditPerSec = logins + guestStarts + rotations + logouts + purged;
  return {
    n,
    requests: (n * o.requestsPerPage) / o.pageSeconds,
    lookupsCached: n * cachedLookupsPerUser(o),
    lookupsSticky: n * cachedLookupsPerUser(o, { sticky: true }),
    lookupsSticky60: n * cachedLookupsPerUser(o, { sticky: true, ttl: 60 }),
    touches,
    rotations,
    logins,
    guestStarts,
    logouts,
    patches,
    auditPerSec,
    purgeDeletesPerSec: purged,
    purgeRowsPerRun: purged * o.purgeEvery,
    notifying: rotations + logouts + patches, // with the cache on (revokes: rare, left out)
    sessionRows,
    sessionInsertsPerDay: (logins + guestStarts) * 86_400,
    retiredRows,
    retiredCapDeletes,
    retiredCascadeDeletes: rotations - retiredCapDeletes,
    rotationsPerRemembered: kRemember,
    rememberedVisitShare: (rememberStarts * perRow) / visits,
    auditRowsPerDay: auditPerSec * 86_400,
  };
}
