import type { SessionFailureReason } from '../active-session.js';

/**
 * Close codes for sockets, in the private range 4000–4999 (RFC 6455 §7.4.2). One place, so
 * clients and docs agree. The close reason (ws) or the error's `data.reason` (socket.io) says why.
 */
export const SOCKET_CLOSE_CODES = {
  /** No session, or the session ended: log in (again) over HTTP, then reconnect. */
  sessionEnded: 4401,
  /** A browser page of another origin opened the socket (cross-site WebSocket hijacking). */
  originNotAllowed: 4403,
  /** Too many invalid tokens from this source: wait, then reconnect. */
  tooManyInvalidTokens: 4429,
} as const;

/**
 * Why a socket was refused or closed. The handshake refusals are the HTTP ones
 * (SessionFailureReason) and `origin_not_allowed`; a socket already open closes with `logout`, `revoked`,
 * `token_reuse_detected`, `idle_timeout` or `absolute_timeout`.
 */
export type SocketCloseReason = SessionFailureReason | 'logout' | 'token_reuse_detected' | 'origin_not_allowed';

export function closeCodeOf(reason: SocketCloseReason): number {
  if (reason === 'too_many_invalid_tokens') return SOCKET_CLOSE_CODES.tooManyInvalidTokens;
  if (reason === 'origin_not_allowed') return SOCKET_CLOSE_CODES.originNotAllowed;
  return SOCKET_CLOSE_CODES.sessionEnded;
}
