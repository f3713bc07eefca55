import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/**
 * Impersonation (`SessionService.impersonate`): an admin acts as a user in a short session of
 * its own, audited with the admin as actor. Off by default; who may start one is the app's
 * decision (check the role before calling it).
 */
export class SessionImpersonationOptions {
  /** Off by default: without it `impersonate()` refuses. */
  @is.Bool() enabled?: boolean;
  /** The impersonation session's absolute lifetime (never past the admin session's own end). */
  @is.Dur({ min: '1s', max: '24h' }) maxDuration?: Duration;
}
