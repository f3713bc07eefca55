import { Inject } from '@nestjs/common';
import { ConnectedSocket, SubscribeMessage, WebSocketGateway, type OnGatewayConnection } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import { CurrentSession, SessionSockets, type ActiveSession } from '../session/index.js';

/**
 * `/ws` (platform-ws): needs a session (the cookie, or `Authorization: Bearer` for non-browser
 * clients), answers the text message `whoami` with the user id, and is closed with 4401 and a
 * reason (`logout`, `revoked`, `idle_timeout`, ...) when the session ends, on any instance.
 */
@WebSocketGateway({ path: '/ws' })
export class SessionGateway implements OnGatewayConnection {
  constructor(@Inject(SessionSockets) private readonly sockets: SessionSockets) {}

  handleConnection(client: WebSocket, request: IncomingMessage) {
    return this.sockets.accept(client, request);
  }

  // Guarded like every handler (SessionGuard): the session checked at the handshake, still live.
  @SubscribeMessage('whoami')
  whoami(@CurrentSession() session: ActiveSession, @ConnectedSocket() client: WebSocket) {
    client.send(session.userId);
  }
}

/** Plain-text messages (`whoami`) are events without data; JSON `{ "event", "data" }` works too. */
export function textOrJsonMessage(buffer: unknown): { event: string; data: unknown } | undefined {
  const text = String(buffer).trim();
  if (!text.startsWith('{')) return text.length > 0 && text.length <= 64 ? { event: text, data: undefined } : undefined;
  try {
    const message = JSON.parse(text) as { event?: unknown; data?: unknown };
    return typeof message.event === 'string' ? { event: message.event, data: message.data } : undefined;
  } catch {
    return undefined;
  }
}
