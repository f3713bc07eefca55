import type { ResolvedSessionOptions } from '../session.options.js';
import { RESERVED_PROFILES, type LifetimeProfile, type LifetimeProfiles } from './lifetime.options.js';

/** `default` (idleTimeout/absoluteTimeout), `guest` (the guests group), then the named ones, in ms. */
export function lifetimeProfiles(ms: {
  default: [idle: number, absolute: number];
  guest: [idle: number, absolute: number];
  named: [name: string, idle: number, absolute: number][];
}): LifetimeProfiles {
  const profile = (name: string, idle: number, absolute: number): [string, LifetimeProfile] => [
    name,
    Object.freeze({ name, idleTimeoutMs: idle, absoluteTimeoutMs: absolute }),
  ];
  return new Map([
    profile('default', ...ms.default),
    profile('guest', ...ms.guest),
    // A named 'default' or 'guest' is refused by a rule of its own; it never replaces these.
    ...ms.named
      .filter(([name]) => !(RESERVED_PROFILES as readonly string[]).includes(name))
      .map(([name, idle, absolute]) => profile(name, idle, absolute)),
  ]);
}

/** Where each profile's timeouts are written in the options, for messages. */
const optionsOf = (name: string) =>
  name === 'default'
    ? { idle: 'idleTimeout', absolute: 'absoluteTimeout' }
    : name === 'guest'
      ? { idle: 'guests.idleTimeout', absolute: 'guests.absoluteTimeout' }
      : { idle: `lifetimes.${name}.idleTimeout`, absolute: `lifetimes.${name}.absoluteTimeout` };

/**
 * A rule between options (session.options.ts RULES): each profile within the maxima, its idle
 * timeout within its absolute one and longer than a touch interval or a rotation grace.
 */
export function lifetimeProblems(
  o: ResolvedSessionOptions,
  show: (path: string) => string,
  given: (path: string) => boolean,
): string[] {
  const problems: string[] = [];
  for (const [name, p] of o.lifetimes) {
    if (name === 'guest' && !o.guests.enabled) continue; // its defaults bind nothing then
    const at = optionsOf(name);
    if (p.idleTimeoutMs > o.maxIdleTimeoutMs)
      problems.push(`${at.idle}: ${show(at.idle)} is longer than maxIdleTimeout ${show('maxIdleTimeout')}`);
    if (p.absoluteTimeoutMs > o.maxAbsoluteTimeoutMs)
      problems.push(
        `${at.absolute}: ${show(at.absolute)} is longer than maxAbsoluteTimeout ${show('maxAbsoluteTimeout')}`,
      );
    // The module-wide pair keeps its own rules (a default idle above a short absolute is harmless).
    if (name === 'default') continue;
    if (p.idleTimeoutMs > p.absoluteTimeoutMs && (name !== 'guest' || given(at.idle)))
      problems.push(`${at.idle}: ${show(at.idle)} must not exceed ${at.absolute} ${show(at.absolute)}`);
    if (p.idleTimeoutMs <= o.touchIntervalMs)
      problems.push(
        `${at.idle}: ${show(at.idle)} must be longer than touchInterval ${show('touchInterval')}, or activity would never extend it`,
      );
    else if (p.idleTimeoutMs <= o.rotationGraceMs)
      problems.push(`${at.idle}: ${show(at.idle)} must be longer than rotationGrace ${show('rotationGrace')}`);
  }
  return problems;
}

/** The profile a login chose; an unknown name (or the guests' own) is the app's mistake, said plainly. */
export function chosenProfile(profiles: LifetimeProfiles, name: string | undefined): LifetimeProfile {
  const profile = name === 'guest' ? undefined : profiles.get(name ?? 'default');
  if (profile) return profile;
  const known = [...profiles.keys()].filter((known) => known !== 'guest');
  throw new TypeError(
    `SessionService.create: unknown lifetime ${JSON.stringify(name)}; the lifetimes option has: ${known.join(', ')}`,
  );
}
