import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { SessionAdminGuard, SessionMetrics } from '../session/index.js';

/**
 * The Prometheus scrape endpoint, for admins only (the same rule as the admin API: a
 * session whose user has the 'admin' role). Mounted only with SESSION_METRICS=on.
 */
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: SessionMetrics,
    private readonly adapter: HttpAdapterHost,
  ) {}

  @Get()
  @UseGuards(SessionAdminGuard)
  async scrape(@Res({ passthrough: true }) response: unknown): Promise<string> {
    const registry = this.metrics.registry!;
    this.adapter.httpAdapter.setHeader(response, 'Content-Type', registry.contentType);
    return registry.metrics();
  }
}
