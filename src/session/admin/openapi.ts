import type { Provider } from '@nestjs/common';
import { AUDIT_EVENTS } from '../audit/audit-event.js';
import { MAX_IP_FILTER_LENGTH } from '../audit/ip-filter.js';
import {
  AuditQueryDto,
  AuditSummaryDto,
  DEFAULT_AUDIT_PAGE_SIZE,
  MAX_AUDIT_PAGE_SIZE,
  SUMMARY_BUCKETS,
} from '../audit/audit-query.dto.js';
import { SessionAdminController } from './session-admin.controller.js';

/**
 * OpenAPI documentation of the admin API, for apps that use @nestjs/swagger.
 *
 * @nestjs/swagger is an optional peer dependency, so nothing here imports it statically: a
 * provider (registered only with the admin API) loads it with `import()` while the app is
 * being created, before `SwaggerModule.createDocument()` can run, and applies the decorators
 * below. Not a top-level `await import()` in the controller file: top-level await would stop
 * CommonJS apps from `require()`-ing this package (Node's require(esm) refuses async modules).
 *
 * Security schemes: the routes accept the session cookie or a bearer token, under the scheme
 * names below; declare them in the DocumentBuilder (see README).
 */
export const SESSION_COOKIE_SECURITY = 'session-cookie';
export const SESSION_BEARER_SECURITY = 'session-bearer';
export const SESSION_ADMIN_TAG = 'session-admin';

type Decorator = (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => unknown;

/** The part of @nestjs/swagger used here (kept local, so our type declarations never name the package). */
export interface SwaggerDecorators {
  ApiTags(...tags: string[]): Decorator;
  ApiCookieAuth(name?: string): Decorator;
  ApiBearerAuth(name?: string): Decorator;
  ApiOperation(options: { summary: string; description?: string }): Decorator;
  ApiResponse(options: { status: number; description: string; schema?: object }): Decorator;
  ApiParam(options: { name: string; description?: string; schema?: object }): Decorator;
  ApiProperty(options?: object): Decorator;
  ApiPropertyOptional(options?: object): Decorator;
}

/**
 * @nestjs/swagger, or undefined when the app does not have it installed. Only "not found" counts
 * as absent: a swagger package that is installed but fails to load is an error worth seeing.
 */
export async function loadSwagger(
  importer: () => Promise<unknown> = () => import('@nestjs/swagger'),
): Promise<SwaggerDecorators | undefined> {
  try {
    return (await importer()) as SwaggerDecorators;
  } catch (error) {
    // The quotes matter: a dependency of swagger that is missing names swagger only in its path.
    const code = (error as { code?: unknown } | undefined)?.code;
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      String((error as Error).message).includes("'@nestjs/swagger'")
    ) {
      return undefined;
    }
    throw error;
  }
}

export const ERROR_BODY = {
  type: 'object',
  required: ['statusCode', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    reason: {
      type: 'string',
      description: "Why there is no usable session, e.g. 'missing', 'idle_timeout', 'revoked'",
    },
  },
};

const EVENT = { type: 'string', enum: [...AUDIT_EVENTS] };
const NULLABLE_STRING = { type: 'string', nullable: true };
const COUNTS = {
  type: 'object',
  additionalProperties: { type: 'integer' },
  description: 'Count per event; events without rows are left out',
};

export const AUDIT_RECORD = {
  type: 'object',
  required: ['id', 'occurredAt', 'event', 'sessionId', 'userId', 'actorId', 'ip', 'userAgent', 'details'],
  properties: {
    id: { type: 'string', description: 'bigint row id, as a string' },
    occurredAt: { type: 'string', format: 'date-time' },
    event: EVENT,
    sessionId: { ...NULLABLE_STRING, format: 'uuid' },
    userId: NULLABLE_STRING,
    actorId: { ...NULLABLE_STRING, description: 'Who caused it: the user, an admin, or null for the system' },
    ip: NULLABLE_STRING,
    userAgent: NULLABLE_STRING,
    details: { type: 'object', additionalProperties: true },
  },
};

const SCHEMAS = {
  auditPage: {
    type: 'object',
    required: ['items', 'nextCursor'],
    properties: {
      items: { type: 'array', items: AUDIT_RECORD, description: 'Newest first' },
      nextCursor: {
        ...NULLABLE_STRING,
        description: 'Pass as `cursor`, with the same filters, for the next page; null on the last page',
      },
    },
  },
  auditSummary: {
    type: 'object',
    required: ['from', 'to', 'bucket', 'buckets', 'totals'],
    properties: {
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' },
      bucket: { type: 'string', enum: [...SUMMARY_BUCKETS] },
      buckets: {
        type: 'array',
        description: 'Buckets that had events, oldest first',
        items: {
          type: 'object',
          required: ['start', 'counts'],
          properties: { start: { type: 'string', format: 'date-time' }, counts: COUNTS },
        },
      },
      totals: COUNTS,
    },
  },
  sessions: {
    type: 'array',
    items: {
      type: 'object',
      required: ['id', 'createdAt', 'lastSeenAt', 'expiresAt', 'ip', 'userAgent', 'current'],
      properties: {
        id: { type: 'string', format: 'uuid' },
        createdAt: { type: 'string', format: 'date-time' },
        lastSeenAt: { type: 'string', format: 'date-time' },
        expiresAt: { type: 'string', format: 'date-time' },
        ip: NULLABLE_STRING,
        userAgent: NULLABLE_STRING,
        current: { type: 'boolean', description: "Whether it is the caller's own session" },
        impersonatedBy: {
          type: 'string',
          description: 'Only on an impersonation session: the admin acting as the user',
        },
        secondFactorPending: {
          type: 'boolean',
          description: 'Only on a session waiting for its second factor (true)',
        },
      },
    },
  },
  revoked: {
    type: 'object',
    required: ['revoked'],
    properties: { revoked: { type: 'integer', description: 'Sessions revoked' } },
  },
};

const DATE = { type: 'string', format: 'date-time', description: 'ISO 8601 date, or date-time with a time zone' };

let documented = false;

/** Applies the OpenAPI decorators to the admin controller and its query DTOs (once per process). */
export function documentSessionAdminApi(swagger: SwaggerDecorators): void {
  if (documented) return;
  documented = true;
  const s = swagger;

  for (const decorate of [
    s.ApiTags(SESSION_ADMIN_TAG),
    s.ApiCookieAuth(SESSION_COOKIE_SECURITY),
    s.ApiBearerAuth(SESSION_BEARER_SECURITY),
  ]) {
    decorate(SessionAdminController);
  }

  // Every route: no session 401, a session that admin.authorize refuses 403, store down 503.
  const common = [
    s.ApiResponse({ status: 401, description: 'No valid session', schema: ERROR_BODY }),
    s.ApiResponse({
      status: 403,
      description: 'The session may not use the admin API (admin.authorize)',
      schema: ERROR_BODY,
    }),
    s.ApiResponse({ status: 503, description: 'The session store is unavailable: retry', schema: ERROR_BODY }),
  ];
  const badRequest = s.ApiResponse({
    status: 400,
    description: 'Invalid filter: every reason is listed in `message`',
    schema: ERROR_BODY,
  });
  const userId = s.ApiParam({
    name: 'userId',
    description: 'The user whose sessions are meant',
    schema: { type: 'string', maxLength: 255 },
  });
  const routes: Record<keyof SessionAdminController, Decorator[]> = {
    queryAudit: [
      s.ApiOperation({
        summary: 'Query the session audit log',
        description: 'Filters combine with AND; keyset pages, newest first.',
      }),
      s.ApiResponse({ status: 200, description: 'One page of audit rows', schema: SCHEMAS.auditPage }),
      badRequest,
    ],
    summarizeAudit: [
      s.ApiOperation({ summary: 'Count audit events per event and time bucket' }),
      s.ApiResponse({ status: 200, description: 'Counts per bucket', schema: SCHEMAS.auditSummary }),
      badRequest,
    ],
    listUserSessions: [
      s.ApiOperation({ summary: "List a user's live sessions" }),
      userId,
      s.ApiResponse({ status: 200, description: 'Live sessions, newest first', schema: SCHEMAS.sessions }),
    ],
    revokeSession: [
      s.ApiOperation({ summary: 'Revoke one session' }),
      s.ApiParam({ name: 'id', description: 'The session id', schema: { type: 'string', format: 'uuid' } }),
      s.ApiResponse({ status: 204, description: 'Revoked (audited with the admin as actor)' }),
      s.ApiResponse({ status: 404, description: 'No live session with this id', schema: ERROR_BODY }),
    ],
    revokeUserSessions: [
      s.ApiOperation({ summary: "Revoke all of a user's sessions" }),
      userId,
      s.ApiResponse({ status: 200, description: 'How many sessions were revoked', schema: SCHEMAS.revoked }),
    ],
  };
  const proto = SessionAdminController.prototype;
  for (const [method, decorators] of Object.entries(routes)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, method)!;
    for (const decorate of [...decorators, ...common]) decorate(proto, method, descriptor);
  }

  // Query parameters: swagger expands a @Query() DTO into its documented properties.
  const query: Record<keyof AuditQueryDto, object> = {
    userId: { type: String, maxLength: 255, description: 'Rows about this user' },
    sessionId: { type: String, format: 'uuid' },
    actorId: { type: String, maxLength: 255, description: 'Rows caused by this actor (user or admin)' },
    events: {
      type: [String],
      enum: [...AUDIT_EVENTS],
      isArray: true,
      description: 'Any of these events: repeat the parameter or separate with commas',
    },
    ip: {
      type: String,
      maxLength: MAX_IP_FILTER_LENGTH,
      description:
        'An IPv4 or IPv6 address (its rows, and the aggregated rows of its IPv6 /64), or a network in CIDR ' +
        'notation such as 192.0.2.0/24 or 2001:db8::/64 (rows whose address or /64 lies within it)',
    },
    from: {
      ...DATE,
      type: String,
      description: 'Inclusive lower bound of occurredAt (ISO 8601, with a time zone when a time is given)',
    },
    to: { ...DATE, type: String, description: 'Exclusive upper bound of occurredAt; after `from`' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_AUDIT_PAGE_SIZE, default: DEFAULT_AUDIT_PAGE_SIZE },
    cursor: {
      type: String,
      maxLength: 128,
      description: '`nextCursor` of the previous page, unaltered (it carries a MAC: an edited cursor is refused)',
    },
  };
  for (const [property, options] of Object.entries(query))
    s.ApiPropertyOptional(options)(AuditQueryDto.prototype, property);
  const summary: Record<keyof AuditSummaryDto, object> = {
    from: { ...DATE, type: String },
    to: {
      ...DATE,
      type: String,
      description: 'After `from`; the range may span 2 days (minute), 92 days (hour) or 731 days (day)',
    },
    bucket: { enum: [...SUMMARY_BUCKETS] },
  };
  for (const [property, options] of Object.entries(summary))
    s.ApiProperty({ required: true, ...options })(AuditSummaryDto.prototype, property);
}

/** Registered with the admin API: documents it when @nestjs/swagger is installed, does nothing otherwise. */
export const SESSION_ADMIN_OPENAPI = 'nest-pg-session:admin-openapi';
export const sessionAdminOpenApiProvider: Provider = {
  provide: SESSION_ADMIN_OPENAPI,
  useFactory: async () => {
    const swagger = await loadSwagger();
    if (swagger) documentSessionAdminApi(swagger);
    return swagger !== undefined;
  },
};
