import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import type { DemoConfig } from './demo-config.js';
import { runMigrations } from './migrate.js';

/** Builds the demo app on either adapter; used by `npm start` and by the e2e tests. */
export async function createDemoApp(config: DemoConfig, options: { logger?: false } = {}): Promise<INestApplication> {
  await runMigrations(config.databaseUrl);
  const adapter = config.adapter === 'fastify' ? new FastifyAdapter({ trustProxy: config.trustProxy }) : expressAdapter(config.trustProxy);
  const app = await NestFactory.create(await AppModule.register(config), adapter, { logger: options.logger ?? ['error', 'warn', 'log'] });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  await app.init();
  if (config.adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}

function expressAdapter(trustProxy: DemoConfig['trustProxy']): ExpressAdapter {
  const adapter = new ExpressAdapter();
  if (trustProxy !== undefined) adapter.set('trust proxy', trustProxy);
  return adapter;
}
