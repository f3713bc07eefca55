import type { SessionLookup } from '../store/session-row.js';
import type { SessionStore } from '../store/session.store.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { auditContext } from '../audit/audit-context.js';
import type { MaybePromise } from '../maybe-async.js';
import { clientIp, headerValue, type HttpRequestLike } from '../transport/http.js';

/** The validator's client check (session-validator.ts, step 3), per the `clientBinding` option. */
export class ClientBinding {
  constructor(
    private readonly store: SessionStore,
    private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Client binding as detection: a request from another address or user agent than the row
   * records is audited once (the row then records the new one); with
   * `rejectOnUserAgentChange`, a new user agent revokes the session instead. Returns the row
   * itself when the client is the one recorded (no await on the common path).
   */
  check(request: HttpRequestLike, row: SessionLookup): MaybePromise<SessionLookup | 'rejected'> {
    const { audit, rejectOnUserAgentChange } = this.options.clientBinding;
    if (!audit && !rejectOnUserAgentChange) return row;
    // The common case, settled on the raw values: the very client the row records (a value
    // the row holds is already in the bounded form auditContext() would make of it).
    const rawIp = clientIp(request);
    if ((rawIp === undefined || rawIp === row.ip) && (headerValue(request, 'user-agent') ?? null) === row.userAgent)
      return row;
    const context = auditContext(request);
    // An unknown address (the client hung up before we read it, or a transport without one)
    // is no evidence of a move: recording it would write the row and audit a change twice.
    const ip = context.ip ?? row.ip;
    const userAgent = context.userAgent ?? null;
    if (rejectOnUserAgentChange && userAgent !== row.userAgent) {
      return this.store
        .revoke(row.id, 'ua_changed', context, { event: 'ua_changed', details: { from: row.userAgent, to: userAgent } })
        .then(() => 'rejected' as const);
    }
    if (!audit || (ip === row.ip && userAgent === row.userAgent)) return row;
    return this.store
      .recordClientChange(row.id, ip, userAgent, context.ip ?? null)
      .then(() => ({ ...row, ip, userAgent }));
  }
}
