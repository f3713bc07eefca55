import { Inject, Injectable } from '@nestjs/common';
import { attachSession, RequestSession, type ActiveSession, type SessionFailureReason } from './active-session.js';
import { auditContext } from './audit/audit-context.js';
import { clockOffset, monotonicNow, SessionCache } from './cache/session-cache.js';
import { andThen } from './maybe-async.js';
import { ClientBinding } from './security/client-binding.js';
import { TokenFloodDetector } from './security/token-flood.detector.js';
import { TokenReuseDetector } from './security/token-reuse.detector.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
import { profileOf } from './lifetime/lifetime.options.js';
import type { ResolvedSessionOptions } from './session.options.js';
import { isLiveAt, type SessionLookup } from './store/session-row.js';
import { SessionStore } from './store/session.store.js';
import { digestBytes, generateToken, tokenDigest } from './token/session-token.js';
import { setHeader, type HttpRequestLike, type HttpResponseLike } from './transport/http.js';
import type { SessionTransport } from './transport/session-transport.js';
import { fail, type PendingOutcome, type PresentedToken, type ValidationOutcome } from './validation-outcome.js';

export { auditContext } from './audit/audit-context.js';
export type { PendingOutcome, ValidationOutcome } from './validation-outcome.js';

/**
 * The hot path, top to bottom: token → row → decision → request.
 *
 *  1. read the token from the transport; none or malformed ends here, with no SQL; a source
 *     that has presented too many unknown or malformed tokens is refused (429), with no SQL;
 *  2. one indexed read by SHA-256(token), which also returns the database clock; none when
 *     the cache (optional, kept coherent by NOTIFY) holds a live copy of the row; a token
 *     matching no current or previous one costs one more, among the retired tokens (theft);
 *  3. decide: revoked, absolute expiry, idle expiry, previous token past grace (theft),
 *     client change (audited once per change, or rejected);
 *  4. write only when needed: rotate after the rotation interval, else touch when
 *     last_seen_at is older than the touch interval (conditional UPDATE, one writer);
 *     a touch refreshes the cached copy, a rotation evicts it (the new token is read once);
 *  5. attach the session to the request.
 *
 * Each step returns its outcome synchronously when it has nothing to wait for: a request the
 * cache answers runs from token to decision without a promise (as does every refusal that
 * needs no SQL). Callers `await` the result either way.
 */
@Injectable()
export class SessionValidator {
  private readonly reuse: TokenReuseDetector;
  private readonly clientBinding: ClientBinding;

  constructor(
    private readonly store: SessionStore,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
    private readonly flood: TokenFloodDetector,
    private readonly cache: SessionCache,
  ) {
    this.reuse = new TokenReuseDetector(store, options.rotationGraceMs);
    this.clientBinding = new ClientBinding(store, options);
  }

  /**
   * `guests`: the route takes guest sessions (`@GuestSession()`). Elsewhere a guest's token
   * counts as no session ('missing'), before anything is written: a guest is not a user.
   * `rotate` false (a socket's handshake, which cannot receive a new token): a session due for
   * rotation is accepted as it is, and rotates on its next HTTP request.
   */
  validate(
    request: HttpRequestLike,
    response: HttpResponseLike,
    guests = false,
    rotate = true,
    secondFactor = false,
  ): PendingOutcome {
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
    const presented: PresentedToken = {
      token: reading.token,
      digest: tokenDigest(reading.token),
      ticket: this.cache.ticket(),
      guests,
      rotate,
      secondFactor,
    };

    // 2. row: a cached copy only ever says "still live" (judged at our clock plus the database
    // clock's offset); one that looks expired is read again, so the database decides.
    const cached = this.cache.get(presented.digest);
    if (cached) {
      const now = this.cache.dbNowOf(cached);
      if (isLiveAt(cached.row, now)) return this.decide(request, response, cached.row, now, presented);
    }
    return this.read(request, response, presented);
  }

  private async read(
    request: HttpRequestLike,
    response: HttpResponseLike,
    presented: PresentedToken,
  ): Promise<ValidationOutcome> {
    const sentAt = monotonicNow();
    const tokenHash = digestBytes(presented.digest);
    const row = await this.store.lookupByTokenHash(tokenHash);
    if (!row) {
      // Neither current nor previous: a token retired longer ago comes back as theft, once.
      if (await this.reuse.retiredTokenReused(tokenHash, () => auditContext(request)))
        return this.reject(response, 'revoked');
      this.flood.recordInvalid(request, 'unknown');
      return this.reject(response, 'invalid');
    }
    // Cached only if live and for the current token, with this read's clock offset.
    this.cache.set(presented.digest, row, clockOffset(row.dbNow, sentAt), presented.ticket);
    return this.decide(request, response, row, row.dbNow.getTime(), presented);
  }

  // 3. decision, on the database clock: `now` is its time in epoch ms
  private decide(
    request: HttpRequestLike,
    response: HttpResponseLike,
    row: SessionLookup,
    now: number,
    presented: PresentedToken,
  ): PendingOutcome {
    if (row.revokedAt) return this.reject(response, 'revoked');
    // Before any write: on a route that takes no guests, a live guest's token is no session at all.
    if (row.userId === null && !presented.guests) return fail('missing');
    if (now >= row.absoluteExpiresAt.getTime()) {
      return this.store
        .deleteWithEvent(row.id, 'expired_absolute', auditContext(request))
        .then(() => this.reject(response, 'absolute_timeout'));
    }
    if (now >= row.idleExpiresAt.getTime()) {
      return this.store
        .deleteWithEvent(row.id, 'expired_idle', auditContext(request))
        .then(() => this.reject(response, 'idle_timeout'));
    }
    // A rotated-out token is fine for requests that were in flight during the rotation;
    // after the grace window, two parties hold the session, so neither keeps it.
    if (!row.isCurrentToken && now > row.rotatedAt.getTime() + this.options.rotationGraceMs) {
      return this.reuse
        .previousTokenReused(row.id, digestBytes(presented.digest), auditContext(request))
        .then(() => this.reject(response, 'revoked'));
    }
    // Waiting for its second factor: refused before anything is written, but on the routes that verify it.
    if (row.secondFactorPending && !presented.secondFactor) return fail('second_factor_required');
    // A changed client is recorded (or the session revoked) before anything else is written.
    return andThen(this.clientBinding.check(request, row), (client) =>
      client === 'rejected'
        ? this.reject(response, 'revoked')
        : this.writeIfDue(request, response, client, now, presented),
    );
  }

  // 4. writes, rarely, then 5. request
  private writeIfDue(
    request: HttpRequestLike,
    response: HttpResponseLike,
    row: SessionLookup,
    now: number,
    presented: PresentedToken,
  ): PendingOutcome {
    // A pending session lives a few minutes as it was created: no touch, no rotation.
    if (!row.isCurrentToken || row.secondFactorPending) return this.accept(request, row, now, presented);
    if (
      presented.rotate &&
      this.options.rotationIntervalMs > 0 &&
      now - row.rotatedAt.getTime() >= this.options.rotationIntervalMs
    ) {
      return this.rotateOnInterval(request, response, row, now, presented);
    }
    if (now - row.lastSeenAt.getTime() >= this.options.touchIntervalMs) return this.touch(request, row, now, presented);
    return this.accept(request, row, now, presented);
  }

  private async rotateOnInterval(
    request: HttpRequestLike,
    response: HttpResponseLike,
    row: SessionLookup,
    now: number,
    presented: PresentedToken,
  ): Promise<ValidationOutcome> {
    const rotated = await this.rotateToken(request, response, row, presented.digest, 'interval');
    if (rotated) return { ok: true, session: this.attach(request, rotated.row, rotated.token, rotated.digest) };
    // Another request rotated first; this one was served under the old token.
    this.cache.evictSession(row.id); // whatever happened instead, a copy of this row is out of date
    return this.accept(request, row, now, presented);
  }

  private async touch(
    request: HttpRequestLike,
    row: SessionLookup,
    now: number,
    presented: PresentedToken,
  ): Promise<ValidationOutcome> {
    const sentAt = monotonicNow();
    const idleTimeoutMs = profileOf(this.options.lifetimes, row.lifetime).idleTimeoutMs;
    const touched = await this.store.touchIfStale(row.id, idleTimeoutMs, this.options.touchIntervalMs);
    if (touched) {
      const fresh = { ...row, ...touched, dbNow: touched.lastSeenAt };
      this.cache.set(presented.digest, fresh, clockOffset(touched.lastSeenAt, sentAt), presented.ticket);
      return this.accept(request, fresh, touched.lastSeenAt.getTime(), presented);
    }
    // Another request or instance touched it first: a cached copy has the old times.
    this.cache.evictSession(row.id);
    return this.accept(request, row, now, presented);
  }

  /**
   * Issues a new token for the session and sends it to the client. `oldDigest` is the
   * presented token's tokenDigest. Returns undefined if the presented token is no longer the
   * current one (a concurrent rotation won).
   */
  async rotateToken(
    request: HttpRequestLike,
    response: HttpResponseLike,
    row: { id: string; lifetime?: string },
    oldDigest: string,
    reason: 'interval' | 'manual' | 'reauthenticated',
  ): Promise<{ row: SessionLookup; token: string; digest: string } | undefined> {
    const token = generateToken();
    const digest = tokenDigest(token);
    const rotated = await this.store.rotate({
      id: row.id,
      oldTokenHash: digestBytes(oldDigest),
      newTokenHash: digestBytes(digest),
      idleTimeoutMs: profileOf(this.options.lifetimes, row.lifetime ?? 'default').idleTimeoutMs,
      reason,
      reauthenticated: reason === 'reauthenticated',
      context: auditContext(request),
    });
    if (!rotated) return undefined;
    this.transport.write(response, token, rotated.absoluteExpiresAt.getTime() - rotated.dbNow.getTime());
    return { row: rotated, token, digest };
  }

  /**
   * Attaches the session to the request; `token` is the one the client holds now, `digest` its
   * tokenDigest (computed once, by the caller), `checkedAt` the database clock (epoch ms) it was
   * checked at (RequestSession's default: the row's `dbNow`).
   */
  attach(
    request: HttpRequestLike,
    row: SessionLookup,
    token: string,
    digest: string,
    checkedAt?: number,
  ): ActiveSession {
    const session = new RequestSession(row, this.transport.kind, token, digest, checkedAt).asSession();
    attachSession(request, session);
    // A guest only where the route asked for guests (validate's `guests`) or created one (patchCurrent).
    return session as ActiveSession;
  }

  private accept(
    request: HttpRequestLike,
    row: SessionLookup,
    now: number,
    presented: PresentedToken,
  ): ValidationOutcome {
    return { ok: true, session: this.attach(request, row, presented.token, presented.digest, now) };
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
