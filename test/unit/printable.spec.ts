import { describe, expect, it } from '@jest/globals';
import { shown } from '../../src/session/cli/database.js';
import { printable } from '../../src/session/printable.js';
import { DroppedCookieWarning } from '../../src/session/transport/cookie.transport.js';

describe('printable: client-sent text as it may reach a log line or a terminal', () => {
  it('escapes C1 controls (NEL, CSI) and DEL, which JSON.stringify leaves as they are', () => {
    const hostile = 'evil\u0085\u009b31mx\u007f.com';
    expect(JSON.stringify(hostile)).toContain('\u0085');
    expect(printable(hostile)).toBe('"evil\\u0085\\u009b31mx\\u007f.com"');
  });

  it('escapes C0 controls, quotes and backslashes, and keeps printable ASCII', () => {
    expect(printable('a\r\nb"c\\d e')).toBe('"a\\u000d\\u000ab\\"c\\\\d e"');
  });

  it('cuts long text and marks the cut', () => {
    expect(printable('x'.repeat(150), 100)).toBe(`"${'x'.repeat(100)}..."`);
  });

  it('is what the dev-cookie warning logs of a hostile Host header', () => {
    const messages: string[] = [];
    const warning = new DroppedCookieWarning({ warn: (message: string) => void messages.push(message) });
    warning.check(
      { headers: {}, protocol: 'http', hostname: 'evil\u0085\u009bx.com' },
      { name: '__Host-sid', secure: true },
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('"evil\\u0085\\u009bx.com"');
    expect([...messages[0]].every((c) => c >= ' ' && c <= '~')).toBe(true);
  });
});

describe('shown: a DATABASE_URL as the CLI may print it', () => {
  it('masks the password in the authority and in the query string', () => {
    const url = new URL('postgres://u:s3cret@db:5432/app?password=s3cret&sslpassword=k3y&sslkey=/k&application_name=x');
    const printed = shown(url);
    expect(printed).not.toMatch(/s3cret|k3y|\/k&/);
    expect(printed).toContain('application_name=x');
    expect(printed).toMatch(/^postgres:\/\/u:\*\*\*@db:5432\/app\?/);
  });
});
