import { Inject, Injectable } from '@nestjs/common';
import { attachSession, RequestSession, type ActiveSession, type SessionFailureReason } from './active-session.js';
import { boundText, MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH, type AuditContext } from './audit/audit-event.js';
import { clockOffset, monotonicNow, SessionCache } from './cache/session-cache.js';
import { TokenFloodDetector } from './security/token-flood.detector.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
import type { ResolvedSessionOptions } from './session.options.js';
import { isLiveAt, type SessionLookup } from './store/session-row.js';
import { SessionStore } from './store/session.store.js';
import { generateToken, hashToken } from './token/session-token.js';
import { clientIp, headerValue, setHeader, type HttpRequestLike, type HttpResponseLike } from './transport/http.js';
import type { SessionTransport } from './transport/session-transport.js';

export type ValidationOutcome =
  | { readonly ok: true; readonly session: ActiveSession }
  | { readonly ok: false; readonly reason: SessionFailureReason };

/**
 * The hot path, top to bottom: token → row → decision → request.
 *
 *  1. read the token from the transport; none or malformed ends here, with no SQL; a source
 *     that has presented too many unknown or malformed tokens is refused (429), with no SQL;
 *  2. one indexed read by SHA-256(token), which also returns the database clock; none when
 *     the cache (optional, kept coherent by NOTIFY) holds a live copy of the row;
 *  3. decide: revoked, absolute expiry, idle expiry, previous token past grace (theft),
 *     client change (audited once per change, or rejected);
 *  4. write only when needed: rotate after the rotation interval, else touch when
 *     last_seen_at is older than the touch interval (conditional UPDATE, one writer);
 *     a touch refreshes the cached copy, a rotation evicts it (the new token is read once);
 *  5. attach the session to the request.
 */
@Injectable()
export class SessionValidator {
  constructor(
    private readonly store: SessionStore,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
    private readonly flood: TokenFloodDetector,
    private readonly cache: SessionCache,
  ) {}

  async validate(request: HttpRequestLike, response: HttpResponseLike): Promise<ValidationOutcome> {
    // 1. token
    const reading = this.transport.read(request);
    if (reading.kind === 'none') return fail('missing');
    const retryAfter = this.flood.retryAfterSeconds(request);
    if (retryAfter > 0) {
      setHeader(response, 'Retry-After', String(retryAfter));
      return fail('too_many_invalid_tokens');
    }
    if (reading.kind === 'malformed') {
      this.flood.recordInvalid(request, 'malformed');
      return this.reject(response, 'invalid');
    }
    const token = reading.token;
    const tokenHash = hashToken(token);

    // 2. row: a cached copy only ever says "still live" (its dbNow is our clock plus the
    // database clock's offset); one that looks expired is read again, so the database decides.
    const ticket = this.cache.ticket();
    const cached = this.cache.get(tokenHash);
    let row = cached && isLiveAt(cached) ? cached : undefined;
    if (!row) {
      const sentAt = monotonicNow();
      row = await this.store.lookupByTokenHash(tokenHash);
      if (!row) {
        this.flood.recordInvalid(request, 'unknown');
        return this.reject(response, 'invalid');
      }
      // Cached only if live and for the current token, with this read's clock offset.
      this.cache.set(tokenHash, row, clockOffset(row.dbNow, sentAt), ticket);
    }

    // 3. decision, on the database clock
    const now = row.dbNow.getTime();
    if (row.revokedAt) return this.reject(response, 'revoked');
    if (now >= row.absoluteExpiresAt.getTime()) {
      await this.store.deleteWithEvent(row.id, 'expired_absolute', auditContext(request));
      return this.reject(response, 'absolute_timeout');
    }
    if (now >= row.idleExpiresAt.getTime()) {
      await this.store.deleteWithEvent(row.id, 'expired_idle', auditContext(request));
      return this.reject(response, 'idle_timeout');
    }
    // A rotated-out token is fine for requests that were in flight during the rotation;
    // after the grace window, two parties hold the session, so neither keeps it.
    if (!row.isCurrentToken && now > row.rotatedAt.getTime() + this.options.rotationGraceMs) {
      await this.store.revoke(row.id, 'token_reuse', auditContext(request), { event: 'token_reuse_detected' });
      return this.reject(response, 'revoked');
    }
    const binding = this.checkClient(request, row);
    const checked = binding instanceof Promise ? await binding : binding; // a promise: the client changed, the store writes
    if (checked === 'rejected') return this.reject(response, 'revoked');
    row = checked;
    if (!row.isCurrentToken) return this.accept(request, row, token, tokenHash);

    // 4. writes, rarely
    const rotationDue = this.options.rotationIntervalMs > 0 && now - row.rotatedAt.getTime() >= this.options.rotationIntervalMs;
    if (rotationDue) {
      const rotated = await this.rotateToken(request, response, row, tokenHash, 'interval');
      if (rotated) return this.accept(request, rotated.row, rotated.token);
      // Another request rotated first; this one was served under the old token.
      this.cache.evictSession(row.id); // whatever happened instead, a copy of this row is out of date
    } else if (now - row.lastSeenAt.getTime() >= this.options.touchIntervalMs) {
      const sentAt = monotonicNow();
      const touched = await this.store.touchIfStale(row.id, this.options.idleTimeoutMs, this.options.touchIntervalMs);
      if (touched) {
        row = { ...row, ...touched, dbNow: touched.lastSeenAt };
        this.cache.set(tokenHash, row, clockOffset(touched.lastSeenAt, sentAt), ticket);
        return this.accept(request, row, token, tokenHash);
      }
      // Another request or instance touched it first: a cached copy has the old times.
      if (cached) this.cache.evictSession(row.id);
    }

    // 5. request
    return this.accept(request, row, token, tokenHash);
  }

  /**
   * Client binding as detection: a request from another address or user agent than the row
   * records is audited once (the row then records the new one); with
   * `rejectOnUserAgentChange`, a new user agent revokes the session instead. Returns the row
   * itself when the client is the one recorded (no await on the common path).
   */
  private checkClient(request: HttpRequestLike, row: SessionLookup): SessionLookup | Promise<SessionLookup | 'rejected'> {
    const { audit, rejectOnUserAgentChange } = this.options.clientBinding;
    if (!audit && !rejectOnUserAgentChange) return row;
    // The common case, settled on the raw values: the very client the row records (a value
    // the row holds is already in the bounded form auditContext() would make of it).
    const rawIp = clientIp(request);
    if ((rawIp === undefined || rawIp === row.ip) && (headerValue(request, 'user-agent') ?? null) === row.userAgent) return row;
    const context = auditContext(request);
    // An unknown address (the client hung up before we read it, or a transport without one)
    // is no evidence of a move: recording it would write the row and audit a change twice.
    const ip = context.ip ?? row.ip;
    const userAgent = context.userAgent ?? null;
    if (rejectOnUserAgentChange && userAgent !== row.userAgent) {
      return this.store.revoke(row.id, 'ua_changed', context, { event: 'ua_changed', details: { from: row.userAgent, to: userAgent } })
        .then(() => 'rejected' as const);
    }
    if (!audit || (ip === row.ip && userAgent === row.userAgent)) return row;
    return this.store.recordClientChange(row.id, ip, userAgent, context.ip ?? null).then(() => ({ ...row, ip, userAgent }));
  }

  /**
   * Issues a new token for the session and sends it to the client. Returns undefined if
   * the presented token is no longer the current one (a concurrent rotation won).
   */
  async rotateToken(request: HttpRequestLike, response: HttpResponseLike, row: { id: string }, oldTokenHash: Buffer,
    reason: 'interval' | 'manual' | 'reauthenticated'): Promise<{ row: SessionLookup; token: string } | undefined> {
    const token = generateToken();
    const rotated = await this.store.rotate({
      id: row.id, oldTokenHash, newTokenHash: hashToken(token), idleTimeoutMs: this.options.idleTimeoutMs, reason,
      reauthenticated: reason === 'reauthenticated', context: auditContext(request),
    });
    if (!rotated) return undefined;
    this.transport.write(response, token, rotated.absoluteExpiresAt.getTime() - rotated.dbNow.getTime());
    return { row: rotated, token };
  }

  /** Attaches the session to the request; `token` is the one the client holds now. */
  attach(request: HttpRequestLike, row: SessionLookup, token: string, tokenHash = hashToken(token)): ActiveSession {
    const session = new RequestSession(row, this.transport.kind, token, tokenHash);
    attachSession(request, session);
    return session;
  }

  private accept(request: HttpRequestLike, row: SessionLookup, token: string, tokenHash?: Buffer): ValidationOutcome {
    return { ok: true, session: this.attach(request, row, token, tokenHash) };
  }

  /**
   * A session that ended by time is removed from the client once (this request deleted the
   * row, so later requests read 'invalid' and clear nothing). Other refusals leave the
   * cookie alone: a 401 for an old or planted token may arrive after the response that set
   * the client's new cookie, and clearing would then log the user out.
   */
  private reject(response: HttpResponseLike, reason: SessionFailureReason): ValidationOutcome {
    if (reason === 'idle_timeout' || reason === 'absolute_timeout') this.transport.clear(response);
    return fail(reason);
  }
}

function fail(reason: SessionFailureReason): ValidationOutcome {
  return { ok: false, reason };
}

export function auditContext(request: HttpRequestLike, actorId?: string): AuditContext {
  return {
    actorId: actorId ?? null,
    ip: boundText(clientIp(request), MAX_IP_LENGTH),
    userAgent: boundText(headerValue(request, 'user-agent'), MAX_USER_AGENT_LENGTH),
  };
}
