import { HttpException, HttpStatus } from '@nestjs/common';
import { LRUCache } from 'lru-cache';

/** Accounts tracked at once; beyond this the least recently failed account is forgotten first. */
const MAX_ACCOUNTS = 100_000;

/**
 * The per-account limit on password checks: at most `limit` failed checks per account name in
 * `windowMs`, from any number of addresses (the per-address budget is @nestjs/throttler's, in
 * app.module.ts). The throttler counts requests before the handler runs, so it cannot count
 * outcomes; this counts failures. Unknown account names are counted exactly like real ones,
 * so the 429 says nothing about whether an account exists.
 */
export class PasswordAttempts {
  private readonly failures: LRUCache<string, { count: number }>;

  constructor(
    private readonly limit: number,
    windowMs: number,
  ) {
    // A fixed window from the first failure: entries are mutated in place, so their TTL is not renewed.
    this.failures = new LRUCache({ max: MAX_ACCOUNTS, ttl: windowMs });
  }

  /**
   * Runs `check` (true when the password is right) unless `account` has used up its failures;
   * then answers 429 with Retry-After without running it. The attempt is counted before the
   * check and refunded when it succeeds, so a burst of concurrent guesses cannot run more than
   * `limit` checks.
   */
  async check(account: string, response: unknown, check: () => Promise<boolean>): Promise<boolean> {
    if (this.limit === 0) return check();
    let entry = this.failures.get(account);
    if (!entry) this.failures.set(account, (entry = { count: 0 }));
    if (entry.count >= this.limit) {
      const seconds = Math.max(1, Math.ceil(this.failures.getRemainingTTL(account) / 1000));
      setHeader(response, 'Retry-After', String(seconds));
      throw new HttpException(
        { statusCode: HttpStatus.TOO_MANY_REQUESTS, message: 'Too many failed password attempts; try again later' },
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    entry.count++;
    let passed = false;
    try {
      passed = await check();
    } finally {
      if (passed) entry.count--;
    }
    return passed;
  }
}

/** Express's `res.setHeader` or Fastify's `reply.header`. */
function setHeader(response: unknown, name: string, value: string): void {
  const target = response as {
    header?: (n: string, v: string) => unknown;
    setHeader?: (n: string, v: string) => unknown;
  };
  if (typeof target.header === 'function') target.header(name, value);
  else target.setHeader?.(name, value);
}
