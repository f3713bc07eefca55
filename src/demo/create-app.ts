import { ValidationPipe, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { WsAdapter } from '@nestjs/platform-ws';
import { AbortedRequestFilter } from './aborted-request.filter.js';
import { AppModule } from './app.module.js';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DemoConfig } from './demo-config.js';
import { JsonDepthPipe } from './json-depth.pipe.js';
import { runMigrations } from './migrate.js';
import { textOrJsonMessage } from './session.gateway.js';

/** Builds the demo app on either adapter; used by `npm start` and by the e2e tests. */
export async function createDemoApp(
  config: DemoConfig,
  options: { logger?: false | LoggerService } = {},
): Promise<INestApplication> {
  await runMigrations(config.databaseUrl);
  const adapter =
    config.adapter === 'fastify'
      ? new FastifyAdapter({
          trustProxy: config.trustProxy,
          // Fastify's requestTimeout defaults to 0: a body trickled in slowly would hold its connection forever.
          requestTimeout: config.requestTimeoutMs,
          bodyLimit: BODY_LIMIT_BYTES,
        })
      : expressAdapter(config.trustProxy);
  const app = await NestFactory.create(await AppModule.register(config), adapter, {
    logger: options.logger ?? ['error', 'warn', 'log'],
    abortOnError: false,
    // app.close() ends open connections (a stalled upload, an idle keep-alive) instead of waiting for them.
    forceCloseConnections: true,
  });
  boundRequestTime(app.getHttpServer(), config.requestTimeoutMs);
  app.useWebSocketAdapter(new WsAdapter(app, { messageParser: textOrJsonMessage }));
  app.useGlobalFilters(new AbortedRequestFilter(app.getHttpAdapter()));
  app.useGlobalPipes(new JsonDepthPipe(32), new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  if (config.adapter === 'express') answerMalformedRequestsWithJson(app.getHttpServer());
  await app.init();
  if (config.adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}

/** Fastify refuses bodies beyond this with 413, as Express's body parser does by default (Fastify's own default is 1 MiB). */
const BODY_LIMIT_BYTES = 100 * 1024;

/**
 * The whole request (headers and body) must arrive within `timeoutMs`, else Node answers 408
 * and closes the connection: a client that sends headers and part of a body, then stalls or
 * trickles, holds a connection for at most that long. Node checks open requests every
 * `connectionsCheckingInterval` (30 s by default, too coarse for a bound of a few seconds);
 * the interval is read when the server starts listening, so setting it here takes effect.
 */
function boundRequestTime(server: Server, timeoutMs: number): void {
  server.requestTimeout = timeoutMs;
  server.headersTimeout = Math.min(timeoutMs, 10_000); // Node's default is 60 s
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(
    1_000,
    timeoutMs / 2,
  );
}

/**
 * Node answers requests it cannot parse (bad header bytes, oversized headers) with a bare
 * 400 before any framework runs; Fastify replaces that with JSON, Express does not. Give
 * Express clients the same JSON error shape as every other refusal.
 */
function answerMalformedRequestsWithJson(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    const [status, reason, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'Malformed HTTP request']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'The request did not arrive within REQUEST_TIMEOUT']
          : [400, 'Bad Request', 'Malformed HTTP request'];
    const body = JSON.stringify({ statusCode: status, error: reason, message });
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
