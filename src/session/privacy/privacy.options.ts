import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/**
 * Data minimisation by age (GDPR Art. 5(1)(c), (e)): how long the audit log keeps who a row came
 * from. Live sessions keep their IP address and user agent; only audit rows lose them.
 */
export class SessionPrivacyOptions {
  /**
   * After this long the purge clears an audit row's IP address, user agent and the details that
   * name either (`ip_changed`/`ua_changed` from and to, aggregated rows' user agents); the event,
   * times and ids stay. false keeps them for the audit log's whole retention. Default: 30d, at
   * most purge.auditRetention; when given, it must not exceed that.
   */
  @is.Dur({ min: 1, or: false }) personalDataRetention?: Duration | false;
}
