import { isIPv4, isIPv6 } from 'node:net';
import { expandIPv6 } from '../security/request-source.js';
import { MAX_IP_LENGTH } from './audit-event.js';

/** The longest text the filter takes: an address as stored, and a prefix such as '/128'. */
export const MAX_IP_FILTER_LENGTH = MAX_IP_LENGTH + 4;

/**
 * The `ip` filter of the admin queries: one address, or a network in CIDR notation. Parsed
 * strictly (node:net decides what an address is; a prefix is 0..32 or 0..128 in plain
 * decimal) and normalised, so equal filters are equal strings (and keep their cursors):
 * lower-case, zeros compressed as in RFC 5952, host bits of a network cleared, an
 * IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) written as the IPv4 address the flood rows
 * and the index (session_audit_inet) use, and a /32 or /128 network written as its address.
 */
export interface IpFilter {
  family: 4 | 6;
  /** The canonical text, e.g. '192.0.2.1', '2001:db8::/64'. */
  text: string;
  /** Undefined for one address. */
  prefix?: number;
}

/** The normalised filter, or undefined when `value` is neither an address nor a network. */
export function parseIpFilter(value: unknown): IpFilter | undefined {
  if (typeof value !== 'string' || value.length > MAX_IP_FILTER_LENGTH) return undefined;
  const match = /^([0-9A-Fa-f:.]+)(?:\/(0|[1-9][0-9]{0,2}))?$/.exec(value);
  if (!match) return undefined; // also refuses zone ids (%eth0) and whitespace
  const [, address, prefixText] = match;
  let bytes: number[];
  if (isIPv4(address)) bytes = address.split('.').map(Number);
  else if (isIPv6(address)) bytes = expandIPv6(address).flatMap((group) => [group >> 8, group & 0xff]);
  else return undefined;
  const bits = bytes.length * 8;
  let prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  if (bits === 128 && prefix >= 96 && isMapped(bytes)) {
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  const family = bytes.length === 4 ? 4 : 6;
  const masked = bytes.map((byte, i) => byte & (0xff << (8 - Math.min(8, Math.max(0, prefix - 8 * i)))) & 0xff);
  const host = family === 4 ? masked.join('.') : formatIPv6(masked);
  return prefix === bytes.length * 8 ? { family, text: host } : { family, text: `${host}/${prefix}`, prefix };
}

/** ::ffff:0:0/96 */
function isMapped(bytes: number[]): boolean {
  return bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** RFC 5952: lower-case hex, no leading zeros, the longest run of two or more zero groups as '::' (the first if tied). */
function formatIPv6(bytes: number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}
