import { Injectable } from '@nestjs/common';
// The only file of the library that imports @nestjs/terminus (an optional peer dependency):
// it is reachable only through the `nest-pg-session/health` entry, never from the main one.
import { HealthIndicatorService } from '@nestjs/terminus';
import { SessionHealth, type HealthCheckOptions } from './session-health.js';

/**
 * A Terminus health indicator for the session store. Provide it in a module that imports
 * `TerminusModule.forRoot()`, and call it from a HealthCheckService check:
 *
 * ```ts
 * @Get('health') @Public() @HealthCheck()
 * check() { return this.health.check([() => this.sessions.isHealthy('session')]); }
 * ```
 *
 * 'down' (503) when the store does not answer `SELECT 1` within `timeoutMs`; 'degraded'
 * (still 200) when the last purge failed or the cache's listener is disconnected. The
 * details name each part: store (response time, error), purge (last run, its age, rows
 * deleted, error), cache (disabled / connected / disconnected).
 */
@Injectable()
export class SessionHealthIndicator {
  constructor(
    private readonly health: SessionHealth,
    private readonly indicators: HealthIndicatorService,
  ) {}

  async isHealthy<const Key extends string = 'session'>(key: Key = 'session' as Key, options: HealthCheckOptions = {}) {
    const indicator = this.indicators.check(key);
    const { status, ...details } = await this.health.check(options);
    if (status === 'down') return indicator.down(details);
    if (status === 'degraded') return indicator.degraded(details);
    return indicator.up(details);
  }
}
