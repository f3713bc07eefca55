import { describe, expect, it } from '@jest/globals';
import { DroppedCookieWarning, isLocalhost } from '../../src/session/transport/cookie.transport.js';

describe('isLocalhost: the hosts browsers keep Secure cookies for over http', () => {
  it.each(['localhost', 'LocalHost', 'localhost.', 'app.localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1'])(
    '%s is',
    (host) => expect(isLocalhost(host)).toBe(true),
  );
  it.each([
    'myapp.test',
    'web',
    '192.168.1.20',
    '10.0.0.1',
    'localhost.evil.com',
    'notlocalhost',
    '[::2]',
    '127.0.0.1.nip.io',
  ])('%s is not', (host) => expect(isLocalhost(host)).toBe(false));
});

describe('DroppedCookieWarning', () => {
  const secure = { name: '__Host-sid', secure: true };
  const make = () => {
    const messages: string[] = [];
    return { messages, warning: new DroppedCookieWarning({ warn: (message: string) => void messages.push(message) }) };
  };
  const plain = { headers: {}, protocol: 'http', hostname: 'myapp.test' };

  it('warns once, naming the host, the cookie and both ways out', () => {
    const { messages, warning } = make();
    expect(warning.check(plain, secure)).toBe(true);
    expect(warning.check({ ...plain, hostname: 'other.test' }, secure)).toBe(false);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`plain http to "myapp.test" set the Secure cookie '__Host-sid'`);
    expect(messages[0]).toContain(`cookie: { secure: false, name: 'sid' }`);
    expect(messages[0]).toContain('https');
  });

  it('says nothing for https, a cookie that is not Secure, localhost, or a request without the framework fields', () => {
    const { messages, warning } = make();
    expect(warning.check({ ...plain, protocol: 'https' }, secure)).toBe(false);
    expect(warning.check(plain, { name: 'sid', secure: false })).toBe(false);
    expect(warning.check({ ...plain, hostname: 'localhost' }, secure)).toBe(false);
    expect(warning.check({ headers: { host: 'myapp.test' } }, secure)).toBe(false);
    expect(messages).toEqual([]);
  });

  it('quotes and escapes the host and bounds it, so a request cannot write log lines of its own', () => {
    const { messages, warning } = make();
    warning.check({ ...plain, hostname: `evil"\n${'x'.repeat(500)}` }, secure);
    expect(messages[0]).not.toContain('\n');
    expect(messages[0]).toContain('"evil\\"\\u000a');
    expect(messages[0].length).toBeLessThan(800);
  });
});
