import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { SessionHealthIndicator } from '../session/health/index.js';
import { Public } from '../session/index.js';

/**
 * Readiness for load balancers and orchestrators: Terminus with the session indicator
 * (store reachable, last purge run and its age, cache listener). 200 while sessions can be
 * checked, 503 when the store does not answer. `database` ('up' / 'down') stays in the body
 * for clients of the demo's first /health.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly session: SessionHealthIndicator,
  ) {}

  @Public()
  @Get()
  @HealthCheck()
  async check() {
    try {
      return {
        ...(await this.health.check([() => this.session.isHealthy('session', { timeoutMs: 2_000 })])),
        database: 'up',
      };
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      throw new ServiceUnavailableException({ statusCode: 503, ...(error.getResponse() as object), database: 'down' });
    }
  }
}
