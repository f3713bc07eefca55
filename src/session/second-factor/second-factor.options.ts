import { parseDuration, type Duration } from '../duration.js';
import * as is from '../option-schema.js';

/**
 * Sessions waiting for a second factor (`create(..., { pendingSecondFactor: true })`): only
 * `@SecondFactorRoute()` routes accept them, for a short time and a few attempts.
 */
export class SessionSecondFactorOptions {
  /** A pending session's whole lifetime (idle and absolute), never past its lifetime profile's. */
  @is.Dur({ min: '30s', max: '1h' }) pendingTimeout?: Duration;
  /** Verification attempts per pending session; the last failed one revokes it. */
  @is.Int(1, 20) maxAttempts?: number;
  /**
   * Failed attempts per user, across all their pending sessions, within `userFailureWindow`:
   * past it verification is refused (401 'second_factor_locked') until the window frees one,
   * however many new pending sessions the password buys.
   */
  @is.Int(1, 1000) userFailureLimit?: number;
  /** The sliding window `userFailureLimit` counts in. */
  @is.Dur({ min: '1m', max: '1d' }) userFailureWindow?: Duration;
  /** Pending sessions one user may hold at once; a new one ends the oldest beyond it. */
  @is.Int(1, 20) maxPendingPerUser?: number;
}

export const SECOND_FACTOR_DEFAULTS = {
  pendingTimeout: '5m',
  maxAttempts: 5,
  userFailureLimit: 10,
  userFailureWindow: '15m',
  maxPendingPerUser: 3,
} as const satisfies SessionSecondFactorOptions;

export function resolveSecondFactor(o: Required<SessionSecondFactorOptions>) {
  return {
    pendingTimeoutMs: parseDuration(o.pendingTimeout)!,
    maxAttempts: o.maxAttempts,
    userFailureLimit: o.userFailureLimit,
    userFailureWindowMs: parseDuration(o.userFailureWindow)!,
    maxPendingPerUser: o.maxPendingPerUser,
  };
}
