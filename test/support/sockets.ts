import { Inject } from '@nestjs/common';
import { SubscribeMessage, WebSocketGateway, type OnGatewayConnection } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { CurrentSession, Public, SessionSockets, type ActiveSession } from '../../src/session/index.js';

/** How a ws socket ended, and when (performance.now()). */
export interface Closed {
  code: number;
  reason: string;
  at: number;
}

export interface OpenedWs {
  socket: WebSocket;
  /** Settles when the server (or we) closed it. */
  closed: Promise<Closed>;
  /** Sends `{ event, data }` and resolves with the next message. */
  ask(event: string): Promise<{ event: string; data: unknown }>;
}

/** Opens a ws connection; resolves once it is open, or with its close when refused before that. */
export function openWs(url: string, headers: Record<string, string> = {}): Promise<OpenedWs> {
  const socket = new WebSocket(url, { headers });
  const closed = new Promise<Closed>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason), at: performance.now() })),
  );
  const ask = (event: string) =>
    new Promise<{ event: string; data: unknown }>((resolve) => {
      socket.once('message', (raw) => resolve(JSON.parse(String(raw)) as { event: string; data: unknown }));
      socket.send(JSON.stringify({ event, data: {} }));
    });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, closed, ask }));
    socket.once('error', reject);
  });
}

/** The close of a socket the server refuses: it opens, then is closed with a code. */
export async function refusal(url: string, headers: Record<string, string> = {}): Promise<Closed> {
  const { closed } = await openWs(url, headers);
  return closed;
}

/** Resolves with how long `closed` took after `since`, failing past `limitMs` (the bound). */
export async function closedWithin(
  closed: Promise<Closed>,
  since: number,
  limitMs: number,
): Promise<Closed & { ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open ${limitMs} ms after the session ended`)), limitMs);
  });
  try {
    const result = await Promise.race([closed, late]);
    return { ...result, ms: Math.round(result.at - since) };
  } finally {
    clearTimeout(timer);
  }
}

/** The ws gateway the socket specs share: `/ws` checks its handshake, answers `whoami` (guarded) and `ping` (public). */
@WebSocketGateway({ path: '/ws' })
export class ProfileGateway implements OnGatewayConnection {
  constructor(@Inject(SessionSockets) private readonly sockets: SessionSockets) {}

  handleConnection(client: WebSocket, request: IncomingMessage) {
    return this.sockets.accept(client, request);
  }

  @SubscribeMessage('whoami')
  whoami(@CurrentSession() session: ActiveSession) {
    return { event: 'whoami', data: session.userId };
  }

  @Public()
  @SubscribeMessage('ping')
  ping() {
    return { event: 'pong', data: 'ok' };
  }
}
