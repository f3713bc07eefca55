import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DemoConfig } from './demo-config.js';
import { JsonDepthPipe } from './json-depth.pipe.js';
import { runMigrations } from './migrate.js';

/** Builds the demo app on either adapter; used by `npm start` and by the e2e tests. */
export async function createDemoApp(config: DemoConfig, options: { logger?: false } = {}): Promise<INestApplication> {
  await runMigrations(config.databaseUrl);
  const adapter =
    config.adapter === 'fastify'
      ? new FastifyAdapter({ trustProxy: config.trustProxy })
      : expressAdapter(config.trustProxy);
  const app = await NestFactory.create(await AppModule.register(config), adapter, {
    logger: options.logger ?? ['error', 'warn', 'log'],
    abortOnError: false,
  });
  app.useGlobalPipes(new JsonDepthPipe(32), new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  if (config.adapter === 'express') answerMalformedRequestsWithJson(app.getHttpServer());
  await app.init();
  if (config.adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}

/**
 * Node answers requests it cannot parse (bad header bytes, oversized headers) with a bare
 * 400 before any framework runs; Fastify replaces that with JSON, Express does not. Give
 * Express clients the same JSON error shape as every other refusal.
 */
function answerMalformedRequestsWithJson(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    const [status, reason] =
      error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = JSON.stringify({ statusCode: status, error: reason, message: 'Malformed HTTP request' });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

function expressAdapter(trustProxy: DemoConfig['trustProxy']): ExpressAdapter {
  const adapter = new ExpressAdapter();
  if (trustProxy !== undefined) adapter.set('trust proxy', trustProxy);
  return adapter;
}
