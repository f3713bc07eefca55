import type { HttpRequestLike } from '../transport/http.js';
import { closeCodeOf, type SocketCloseReason } from './socket-close.js';

/** A `ws` WebSocket (@nestjs/platform-ws) as far as we use it. */
interface WsClientLike {
  readyState: number;
  close(code: number, reason: string): void;
}

/** A socket.io Socket (@nestjs/platform-socket.io) as far as we use it. */
interface IoClientLike {
  request: HttpRequestLike;
  handshake: unknown;
  connected: boolean;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(close?: boolean): unknown;
}

/** The event a socket.io client receives just before the server disconnects it: `{ code, reason }`. */
export const SESSION_ENDED_EVENT = 'session_ended';

export function isIoClient(client: object): client is IoClientLike {
  const io = client as Partial<IoClientLike>;
  return typeof io.disconnect === 'function' && io.handshake !== undefined && io.request !== undefined;
}

/** The HTTP request that opened the socket (ws: given by the adapter; socket.io: `socket.request`). */
export function upgradeRequestOf(client: object, request?: HttpRequestLike): HttpRequestLike | undefined {
  return request ?? (isIoClient(client) ? client.request : undefined);
}

/** Closes either kind of socket with the documented code and reason. */
export function closeClient(client: object, reason: SocketCloseReason): void {
  const code = closeCodeOf(reason);
  if (isIoClient(client)) {
    if (!client.connected) return;
    client.emit(SESSION_ENDED_EVENT, { code, reason });
    client.disconnect(true);
    return;
  }
  const ws = client as WsClientLike;
  if (typeof ws.close === 'function' && ws.readyState <= 1) ws.close(code, reason); // CONNECTING or OPEN
}
