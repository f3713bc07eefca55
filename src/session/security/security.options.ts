import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/** Flood and guess detection for unknown or malformed tokens, per client address. */
export class SessionFloodOptions {
  /** Unknown or malformed tokens a source may present per window before it gets 429; 0 never blocks. */
  @is.Int(0, 1_000_000) limit?: number;
  /** Length of the counting window, also the period of the aggregated audit rows. */
  @is.Dur({ min: 1 }) window?: Duration;
  /** Sources tracked at once (least recently seen are dropped first). */
  @is.Int(1, 10_000_000) maxSources?: number;
}

export type SessionLimitPolicy = 'evict-oldest' | 'reject';

/** Per-user cap on live sessions (off unless set). */
export class SessionLimitOptions {
  @is.Int(1, 10_000, true) maxSessionsPerUser: number;
  /** 'evict-oldest' revokes the oldest sessions; 'reject' refuses the login with 409. */
  @is.OneOf(['evict-oldest', 'reject']) policy?: SessionLimitPolicy;
}

/** Step-up: how recent the last authentication must be for `@RequireFreshSession()`. */
export class SessionStepUpOptions {
  /** What `@RequireFreshSession()` without an argument asks for. */
  @is.Dur({ min: 1 }) maxAge?: Duration;
}

/** What to do when a session shows up from another IP address or user agent. */
export class SessionClientBindingOptions {
  /** Record `ip_changed` / `ua_changed` (once per change). */
  @is.Bool() audit?: boolean;
  /** Revoke the session when its user agent changes (browser updates change it too). */
  @is.Bool() rejectOnUserAgentChange?: boolean;
}
