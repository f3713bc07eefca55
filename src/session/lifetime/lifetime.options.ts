import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/** A name for a lifetime profile, as `create(req, res, { lifetime })` takes it. */
export const PROFILE_NAME = /^[a-z][a-zA-Z0-9_-]{0,31}$/;
/** Names the module gives itself: `default` is idleTimeout/absoluteTimeout, `guest` is the `guests` group. */
export const RESERVED_PROFILES = ['default', 'guest'] as const;

/** One named lifetime (e.g. `remember`), chosen per session at `create()`. */
export class SessionLifetimeOptions {
  /** Ends a session of this profile this long after its last request. */
  @is.Dur({ min: 1, required: true }) idleTimeout: Duration;
  /** Ends a session of this profile this long after login, whatever the activity. */
  @is.Dur({ min: 1, required: true }) absoluteTimeout: Duration;
}

/** A profile as the module reads it. */
export interface LifetimeProfile {
  readonly name: string;
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
}

/** Every profile by name (a Map: a name such as 'constructor' is just a name). */
export type LifetimeProfiles = ReadonlyMap<string, LifetimeProfile>;

/**
 * The profile a row names. A row whose profile was removed from the options since it was
 * created falls back to `default` for touch and rotation; its absolute expiry stays as stored.
 */
export function profileOf(profiles: LifetimeProfiles, name: string): LifetimeProfile {
  return profiles.get(name) ?? profiles.get('default')!;
}
