import type { SessionAdminOptions } from './admin/admin.options.js';
import { lifetimeProblems } from './lifetime/lifetime-profiles.js';
import { RESERVED_PROFILES } from './lifetime/lifetime.options.js';
import { isGiven, isGroup, SessionOptionsError } from './option-schema.js';
import type { ResolvedCookieOptions, ResolvedSessionOptions } from './session.options.js';

// What resolveSessionOptions (session.options.ts) checks once each option passed on its own:
// the rules between options, and where the admin API's options may come from.

/** Cookie prefix rules (RFC 6265bis), so a browser never silently drops a cookie we set. */
function prefixProblem(name: string, cookie: ResolvedCookieOptions): string | undefined {
  if (/^__(host|secure)-/i.test(name) && !/^__(Host|Secure)-/.test(name))
    return "looks like a cookie prefix but is not spelled '__Host-' or '__Secure-'";
  if (/^__(Host|Secure)-/.test(name) && !cookie.secure) return 'needs cookie.secure: true';
  if (name.startsWith('__Host-') && cookie.domain !== undefined) return 'must not go with a cookie.domain';
  if (name.startsWith('__Host-') && cookie.path !== '/') return "needs cookie.path '/'";
}

/**
 * Rules between options, on resolved values; each returns '<option>: <problem>' when broken.
 * `show(path)` writes an option as the user gave it, or its default marked '(default)'.
 */
type Rule = (o: ResolvedSessionOptions, show: (path: string) => string, given: (path: string) => boolean) => unknown;
export const RULES: Rule[] = [
  // `default` and `guest` are spelled elsewhere in the options; naming them here would say it twice.
  (_o, _show, given) =>
    RESERVED_PROFILES.filter((name) => given(`lifetimes.${name}`)).map(
      (name) =>
        `lifetimes.${name}: is a reserved name: ${name === 'default' ? 'set idleTimeout and absoluteTimeout' : 'set guests.idleTimeout and guests.absoluteTimeout'} instead`,
    ),
  lifetimeProblems,
  // A default idle timeout above a short absolute one is harmless: the absolute one ends the session first.
  (o, show, given) =>
    given('idleTimeout') &&
    o.idleTimeoutMs > o.absoluteTimeoutMs &&
    `idleTimeout: ${show('idleTimeout')} must not exceed absoluteTimeout ${show('absoluteTimeout')}`,
  (o, show) =>
    o.touchIntervalMs >= o.idleTimeoutMs &&
    `touchInterval: ${show('touchInterval')} must be shorter than idleTimeout ${show('idleTimeout')}`,
  (o, show) =>
    o.rotationGraceMs >= o.idleTimeoutMs &&
    `rotationGrace: ${show('rotationGrace')} must be shorter than idleTimeout ${show('idleTimeout')}`,
  // Rotating again inside the grace window would retire a token that requests may still carry.
  (o, show) =>
    o.rotationIntervalMs !== 0 &&
    o.rotationIntervalMs <= o.rotationGraceMs &&
    `rotationInterval: ${show('rotationInterval')} must be 0 (no rotation) or longer than rotationGrace ${show('rotationGrace')}`,
  (o, show) => {
    const problem = prefixProblem(o.cookie.name, o.cookie);
    return problem && `cookie.name: ${show('cookie.name')} ${problem}`;
  },
  (o, show) =>
    o.cookie.sameSite === 'none' &&
    !o.cookie.secure &&
    `cookie.sameSite: ${show('cookie.sameSite')} needs cookie.secure: true`,
  // The CSRF cookie is written beside the session cookie, with its attributes.
  (o, show) =>
    o.csrf.cookieName === o.cookie.name &&
    `csrf.cookieName: ${show('csrf.cookieName')} must differ from the session cookie's name`,
  // (A default name takes the session cookie's prefix, judged above.)
  (o, show, given) => {
    const problem = given('csrf.cookieName') && o.csrf.cookieName && prefixProblem(o.csrf.cookieName, o.cookie);
    return problem && `csrf.cookieName: ${show('csrf.cookieName')} ${problem}`;
  },
  // A cache whose own instance stays silent would let the others serve its changes stale.
  (o) => o.cache.enabled && !o.cache.notify && 'cache.notify: cannot be false while cache.enabled is true',
  // Rows are gone by then anyway: a longer one would promise a minimisation that never happens.
  (o, show) =>
    o.privacy.personalDataRetentionMs !== null &&
    o.purge.auditRetentionMs !== null &&
    o.privacy.personalDataRetentionMs > o.purge.auditRetentionMs &&
    `privacy.personalDataRetention: ${show('privacy.personalDataRetention')} must not exceed purge.auditRetention ` +
      `${show('purge.auditRetention')} (audit rows are deleted then), or be false`,
  (o, _show, given) =>
    !o.encryption &&
    (given('encryption.encryptWrites') || given('encryption.readPlaintext')) &&
    'encryption.keys: must be given (at least one key) for encryptWrites or readPlaintext to mean anything',
  (o) =>
    o.admin.enabled &&
    typeof o.admin.authorize !== 'function' &&
    'admin.authorize: must be a function (session, request) => boolean | Promise<boolean> when admin.enabled is true',
];

/**
 * Routes are fixed when the module is built, before a forRootAsync factory runs. So `enabled`
 * and `path` come from where SessionModule is imported (`forRoot({ admin })`, or `admin`
 * beside `useFactory`); `authorize` may come from either, e.g. from the factory to use
 * injected services. Contradictions stop the app at start-up. `defaultPath`: DEFAULTS.admin.path.
 */
export function mountedAdmin(
  mounted: SessionAdminOptions | undefined,
  fromOptions: SessionAdminOptions | undefined,
  defaultPath: string,
) {
  if (mounted === fromOptions || !isGroup(fromOptions)) return fromOptions ?? mounted; // validation names a non-object
  const problem =
    fromOptions.enabled === true && mounted?.enabled !== true
      ? 'admin.enabled: true came from the options factory, but routes are built before it runs: ' +
        'pass admin: { enabled: true } to SessionModule.forRootAsync() beside useFactory'
      : fromOptions.enabled === false && mounted?.enabled === true
        ? 'admin.enabled: false in the options factory, but true where SessionModule is imported'
        : isGiven(fromOptions.path) && fromOptions.path !== (mounted?.path ?? defaultPath)
          ? 'admin.path: must be given where SessionModule is imported (beside useFactory), not by the factory'
          : undefined;
  if (problem) throw SessionOptionsError.of([problem]);
  return { ...mounted, ...fromOptions, path: mounted?.path };
}
