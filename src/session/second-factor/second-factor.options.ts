import type { Duration } from '../duration.js';
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
}
