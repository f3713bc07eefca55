import type { ActiveSession, SessionFailureReason } from './active-session.js';
import type { MaybePromise } from './maybe-async.js';

// What SessionValidator.validate() answers, and what it carries along the hot path.

export type ValidationOutcome =
  | { readonly ok: true; readonly session: ActiveSession }
  | { readonly ok: false; readonly reason: SessionFailureReason };

/** An outcome now (the cache answered and nothing needs writing) or once the database has answered. */
export type PendingOutcome = MaybePromise<ValidationOutcome>;

/** The token a request presented, its SHA-256 (tokenDigest), and the cache's ticket taken before any read. */
export interface PresentedToken {
  readonly token: string;
  readonly digest: string;
  readonly ticket: number;
  /** The route takes guest sessions. */
  readonly guests: boolean;
  /** The token may be replaced (not on a socket's handshake). */
  readonly rotate: boolean;
  /** The route verifies second factors (`@SecondFactorRoute()`): a pending session counts. */
  readonly secondFactor: boolean;
}

export function fail(reason: SessionFailureReason): ValidationOutcome {
  return { ok: false, reason };
}
