import { isIPv4, isIPv6 } from 'node:net';

/**
 * The "source" that flood limits and aggregated audit rows are counted per: the client's IPv4
 * address, or the /64 network of an IPv6 address (one host usually owns a whole /64, so
 * counting single IPv6 addresses would let it rotate through 2^64 of them).
 *
 * The address is the one the framework resolved (Express `trust proxy`, Fastify `trustProxy`):
 * behind a reverse proxy that is not trusted, every client looks like the proxy.
 */
export function sourceOf(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.split('%')[0]; // drop an IPv6 zone id
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  if (isIPv6(address))
    return `${expandIPv6(address)
      .slice(0, 4)
      .map((group) => group.toString(16))
      .join(':')}::/64`;
  return address.slice(0, 64);
}

/** The eight 16-bit groups of an address that node:net's isIPv6() accepts. */
export function expandIPv6(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, -dotted[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((group) => parseInt(group, 16));
}
