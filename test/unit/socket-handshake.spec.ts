import { describe, expect, it } from '@jest/globals';
import { textOrJsonMessage } from '../../src/demo/session.gateway.js';
import { closeCodeOf } from '../../src/session/socket/socket-close.js';
import { handshakeOriginAllowed } from '../../src/session/socket/socket-origin.js';

const upgrade = (headers: Record<string, string>) => ({ headers });

describe('handshakeOriginAllowed (cross-site WebSocket hijacking)', () => {
  it('takes the host the socket connects to, and no Origin at all (not a browser)', () => {
    expect(handshakeOriginAllowed(upgrade({ host: 'app.example.com', origin: 'https://app.example.com' }))).toBe(true);
    expect(handshakeOriginAllowed(upgrade({ host: 'app.example.com' }))).toBe(true);
  });

  it.each([
    ['https://evil.example'],
    ['https://app.example.com.evil.example'],
    ['https://evil.app.example.com'],
    ['null'],
    ['file://'],
    ['not a url'],
  ])('refuses Origin %p for host app.example.com', (origin) => {
    expect(handshakeOriginAllowed(upgrade({ host: 'app.example.com', origin }))).toBe(false);
  });

  it('takes exactly csrf.allowedOrigins when given', () => {
    const allowed = ['https://app.example.com'];
    expect(
      handshakeOriginAllowed(upgrade({ host: 'api.example.com', origin: 'https://app.example.com' }), allowed),
    ).toBe(true);
    expect(
      handshakeOriginAllowed(upgrade({ host: 'api.example.com', origin: 'https://api.example.com' }), allowed),
    ).toBe(false);
  });
});

describe('close codes', () => {
  it('are 4401 for an ended session, 4403 for another origin, 4429 for a flood', () => {
    expect(
      ['missing', 'logout', 'revoked', 'idle_timeout', 'token_reuse_detected'].map((r) => closeCodeOf(r as never)),
    ).toEqual([4401, 4401, 4401, 4401, 4401]);
    expect(closeCodeOf('origin_not_allowed')).toBe(4403);
    expect(closeCodeOf('too_many_invalid_tokens')).toBe(4429);
  });
});

describe("the demo's /ws message parser", () => {
  it('reads a text message as an event, and JSON { event, data }', () => {
    expect(textOrJsonMessage(Buffer.from('whoami\n'))).toEqual({ event: 'whoami', data: undefined });
    expect(textOrJsonMessage('{"event":"whoami","data":1}')).toEqual({ event: 'whoami', data: 1 });
  });

  it('drops what is no event: empty, oversized, malformed or event-less JSON', () => {
    for (const raw of ['', 'x'.repeat(65), '{oops', '{"data":1}', '{"event":3}'])
      expect(textOrJsonMessage(raw)).toBeUndefined();
  });
});
