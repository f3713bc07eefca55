import { Catch, Logger, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';

/**
 * A client that sends a Content-Length and hangs up before the body is complete is not a
 * server error: left to Nest's default handler, Fastify's 'aborted' error is logged as
 * `ERROR [ExceptionsHandler]` with a stack per request, so any client could fill the log.
 * Such requests get one debug line; every other error goes to Nest's handling unchanged.
 */
@Catch()
export class AbortedRequestFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('AbortedRequest');

  override catch(exception: unknown, host: ArgumentsHost): void {
    if (!isAbortedBody(exception)) return super.catch(exception, host);
    const http = host.switchToHttp();
    const request = http.getRequest<{ method?: string; url?: string }>();
    this.logger.debug(`${request.method} ${request.url}: client closed the connection before its body arrived`);
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    const response = http.getResponse();
    // The client is gone; answering keeps the framework's bookkeeping for the request simple.
    if (adapter && !adapter.isHeadersSent(response))
      adapter.reply(response, { statusCode: 400, message: 'Request aborted' }, 400);
  }
}

/** Node's 'aborted' (Fastify reads the raw stream) or body-parser's 'request.aborted' (Express). */
export function isAbortedBody(exception: unknown): boolean {
  const error = exception as { code?: unknown; type?: unknown; message?: unknown } | null;
  if (typeof error !== 'object' || error === null) return false;
  return error.type === 'request.aborted' || (error.code === 'ECONNRESET' && error.message === 'aborted');
}
