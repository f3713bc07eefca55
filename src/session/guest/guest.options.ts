import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/**
 * Sessions for visitors who have not logged in (a cart, a wizard, an OAuth `state`): created
 * by the first `SessionService.patchCurrent()` on a `@GuestSession()` route, never by a read.
 */
export class SessionGuestOptions {
  /** Off by default: without it no guest session is ever created. */
  @is.Bool() enabled?: boolean;
  /** Ends a guest session this long after its last request (the `guest` lifetime profile). */
  @is.Dur({ min: 1 }) idleTimeout?: Duration;
  /** Ends a guest session this long after it was created. */
  @is.Dur({ min: 1 }) absoluteTimeout?: Duration;
  /** Upper bound of a guest session's JSON data, in bytes (user sessions have maxDataBytes). */
  @is.Int(2, 1_048_576) maxDataBytes?: number;
  /** Guest sessions one source (IPv4 address or IPv6 /64) may create per window; then 429. 0: no limit. */
  @is.Int(0, 1_000_000) createLimit?: number;
  /** The window of createLimit. */
  @is.Dur({ min: 1 }) createWindow?: Duration;
}
