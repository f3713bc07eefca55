import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { AuditQueryDto, validateDto } from '../../src/session/audit/audit-query.dto.js';
import { parseIpFilter } from '../../src/session/audit/ip-filter.js';
import { sourceOf } from '../../src/session/security/request-source.js';

describe('the audit ip filter', () => {
  it.each([
    ['192.0.2.1', { family: 4, text: '192.0.2.1' }],
    ['192.0.2.77/24', { family: 4, text: '192.0.2.0/24', prefix: 24 }],
    ['192.0.2.1/32', { family: 4, text: '192.0.2.1' }],
    ['0.0.0.0/0', { family: 4, text: '0.0.0.0/0', prefix: 0 }],
    ['2001:DB8::1', { family: 6, text: '2001:db8::1' }],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', { family: 6, text: '2001:db8::1' }],
    ['2001:db8:0:0:1::1/64', { family: 6, text: '2001:db8::/64', prefix: 64 }],
    ['2001:db8:0:0::/64', { family: 6, text: '2001:db8::/64', prefix: 64 }],
    ['2001:db8::1/128', { family: 6, text: '2001:db8::1' }],
    ['1:0:0:1:0:0:0:1', { family: 6, text: '1:0:0:1::1' }],
    ['::/0', { family: 6, text: '::/0', prefix: 0 }],
    ['::', { family: 6, text: '::' }],
    ['::ffff:192.0.2.1', { family: 4, text: '192.0.2.1' }],
    ['::ffff:192.0.2.0/120', { family: 4, text: '192.0.2.0/24', prefix: 24 }],
    ['::ffff:0:0/95', { family: 6, text: '::fffe:0:0/95', prefix: 95 }],
  ])('normalises %s', (input, expected) => {
    expect(parseIpFilter(input)).toEqual(expected);
  });

  it.each([
    '',
    '010.0.0.1',
    '192.0.2.1/33',
    '192.0.2.0/08',
    '192.0.2.0/',
    '2001:db8::/129',
    '1::1%eth0',
    ' 192.0.2.1',
    '192.0.2.1 ',
    '1.2.3',
    '2001:db8::/64/64',
    '2001:db8:::1',
    'localhost',
    '192.0.2.1/-1',
    '192.0.2.1/1e1',
  ])('refuses %j', (input) => {
    expect(parseIpFilter(input)).toBeUndefined();
  });

  it('reads back every /64 that the flood rows record (sourceOf) as that network', () => {
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        const source = sourceOf(address);
        const parsed = parseIpFilter(source);
        expect(parsed).toBeDefined();
        if (parsed!.family === 6) expect(parsed).toMatchObject({ prefix: 64 });
        // normalising is idempotent: a normalised filter is its own normal form
        expect(parseIpFilter(parsed!.text)).toEqual(parsed);
      }),
    );
  });

  it('never throws, and accepts only what node:net calls an address (with an optional prefix)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 70 }), fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), (text) => {
        const parsed = parseIpFilter(text);
        if (parsed) expect(parseIpFilter(parsed.text)).toEqual(parsed);
      }),
    );
  });

  it('AuditQueryDto takes an address or a network, normalised, and refuses the rest with a clear message', () => {
    expect(validateDto(AuditQueryDto, { ip: '2001:DB8:0:0:5::1/64' }).ip).toBe('2001:db8::/64');
    expect(validateDto(AuditQueryDto, { ip: '198.51.100.7' }).ip).toBe('198.51.100.7');
    for (const ip of ['2001:db8::/129', '10.0.0.1/33', 'not-an-ip', '10.0.0.1/24 ', ['10.0.0.1'], 42]) {
      let error: unknown;
      try {
        validateDto(AuditQueryDto, { ip });
      } catch (caught) {
        error = caught;
      }
      expect((error as { getResponse(): unknown }).getResponse()).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: [
          'ip must be an IPv4 or IPv6 address, or a network in CIDR notation (e.g. 192.0.2.0/24, 2001:db8::/64)',
        ],
      });
    }
  });
});
