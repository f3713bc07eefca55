import type { HttpRequestLike } from '../../src/session/transport/http.js';

/** Just enough of an Express response for the session layer to write headers to. */
export class FakeResponse {
  readonly headers = new Map<string, string[]>();
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    this.headers.set(key, [...(this.headers.get(key) ?? []), value]);
  }
  setHeader(name: string, value: string): void {
    this.headers.set(name.toLowerCase(), [value]);
  }
  /** The session token a Set-Cookie line on this response carries (undefined when none). */
  sessionToken(name = '__Host-sid'): string | undefined {
    const line = this.headers.get('set-cookie')?.findLast((l) => l.startsWith(`${name}=`));
    return line?.slice(name.length + 1).split(';')[0];
  }
}

/** `ip: null` is a request whose address is unknown (e.g. the socket closed before it was read). */
export function fakeRequest(options: { token?: string; ip?: string | null; userAgent?: string } = {}): HttpRequestLike {
  return {
    headers: {
      'user-agent': options.userAgent ?? 'jest-agent/1.0',
      ...(options.token ? { cookie: `__Host-sid=${options.token}` } : {}),
    },
    ip: options.ip === null ? undefined : (options.ip ?? '203.0.113.7'),
  };
}
