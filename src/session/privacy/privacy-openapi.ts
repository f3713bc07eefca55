import type { Provider } from '@nestjs/common';
import {
  AUDIT_RECORD,
  ERROR_BODY,
  loadSwagger,
  SESSION_ADMIN_TAG,
  SESSION_BEARER_SECURITY,
  SESSION_COOKIE_SECURITY,
  type SwaggerDecorators,
} from '../admin/openapi.js';
import { ERASURE_MODES, EraseUserQueryDto } from './erase-user.dto.js';
import { SessionPrivacyAdminController } from './privacy-admin.controller.js';
import { MAX_EXPORTED_AUDIT_EVENTS, MAX_EXPORTED_SESSIONS } from './session-privacy.service.js';

const TIME = { type: 'string', format: 'date-time' };
const NULLABLE_TIME = { ...TIME, nullable: true };
const NULLABLE_STRING = { type: 'string', nullable: true };
const COUNT = { type: 'integer', minimum: 0 };

const EXPORTED_SESSION = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    userId: { ...NULLABLE_STRING, description: "null: a guest session that became the user's at a login" },
    guest: { type: 'boolean' },
    createdAt: TIME,
    lastSeenAt: TIME,
    authenticatedAt: TIME,
    idleExpiresAt: TIME,
    absoluteExpiresAt: TIME,
    revokedAt: NULLABLE_TIME,
    revokeReason: NULLABLE_STRING,
    lifetime: { type: 'string' },
    ip: NULLABLE_STRING,
    userAgent: NULLABLE_STRING,
    impersonatorId: { ...NULLABLE_STRING, description: 'An impersonation session: the admin acting as userId' },
    impersonatorSessionId: { ...NULLABLE_STRING, format: 'uuid' },
    data: { type: 'object', additionalProperties: true },
  },
};

const SCHEMAS = {
  export: {
    type: 'object',
    required: ['userId', 'exportedAt', 'sessions', 'auditEvents', 'truncated'],
    properties: {
      userId: { type: 'string' },
      exportedAt: TIME,
      sessions: {
        type: 'array',
        items: EXPORTED_SESSION,
        description: `Newest first, at most ${MAX_EXPORTED_SESSIONS}`,
      },
      auditEvents: {
        type: 'array',
        items: AUDIT_RECORD,
        description: `Newest first, at most ${MAX_EXPORTED_AUDIT_EVENTS}`,
      },
      truncated: {
        type: 'object',
        properties: { sessions: { type: 'boolean' }, auditEvents: { type: 'boolean' } },
        description: 'Where the bound cut rows off (the audit query pages through the rest)',
      },
    },
  },
  erasure: {
    type: 'object',
    required: [
      'mode',
      'pseudonym',
      'sessionsDeleted',
      'retiredTokensDeleted',
      'auditRowsAnonymised',
      'auditRowsDeleted',
    ],
    properties: {
      mode: { type: 'string', enum: [...ERASURE_MODES] },
      pseudonym: { type: 'string', description: "The user's stand-in in the audit log from now on" },
      sessionsDeleted: COUNT,
      retiredTokensDeleted: COUNT,
      auditRowsAnonymised: COUNT,
      auditRowsDeleted: COUNT,
    },
  },
};

let documented = false;

/** Applies the OpenAPI decorators to the personal-data routes (once per process), as openapi.ts does for the others. */
export function documentSessionPrivacyApi(s: SwaggerDecorators): void {
  if (documented) return;
  documented = true;
  for (const decorate of [
    s.ApiTags(SESSION_ADMIN_TAG),
    s.ApiCookieAuth(SESSION_COOKIE_SECURITY),
    s.ApiBearerAuth(SESSION_BEARER_SECURITY),
  ])
    decorate(SessionPrivacyAdminController);
  const common = [
    s.ApiParam({
      name: 'userId',
      description: 'The user whose data is meant',
      schema: { type: 'string', maxLength: 255 },
    }),
    s.ApiResponse({ status: 400, description: 'Invalid user id or mode', schema: ERROR_BODY }),
    s.ApiResponse({ status: 401, description: 'No valid session', schema: ERROR_BODY }),
    s.ApiResponse({
      status: 403,
      description: 'The session may not use the admin API (admin.authorize)',
      schema: ERROR_BODY,
    }),
    s.ApiResponse({ status: 503, description: 'The session store is unavailable: retry', schema: ERROR_BODY }),
  ];
  const routes: Record<keyof SessionPrivacyAdminController, unknown[]> = {
    exportPersonalData: [
      s.ApiOperation({
        summary: "Export a user's personal data (GDPR Art. 15)",
        description: 'Their sessions (with data, never tokens) and audit events, as JSON.',
      }),
      s.ApiResponse({ status: 200, description: 'The export', schema: SCHEMAS.export }),
    ],
    erasePersonalData: [
      s.ApiOperation({
        summary: "Erase a user's personal data (GDPR Art. 17)",
        description:
          'Deletes their sessions and anonymises (default) or deletes their audit rows in one transaction, ' +
          'audited as personal_data_erased. Idempotent.',
      }),
      s.ApiResponse({ status: 200, description: 'What was erased', schema: SCHEMAS.erasure }),
    ],
  };
  const proto = SessionPrivacyAdminController.prototype;
  for (const [method, decorators] of Object.entries(routes)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, method)!;
    for (const decorate of [...decorators, ...common] as Array<ReturnType<SwaggerDecorators['ApiTags']>>)
      decorate(proto, method, descriptor);
  }
  s.ApiPropertyOptional({ enum: [...ERASURE_MODES], default: 'anonymise' })(EraseUserQueryDto.prototype, 'mode');
}

export const SESSION_PRIVACY_OPENAPI = 'nest-pg-session:privacy-openapi';
/** Registered with the admin API: documents the personal-data routes when @nestjs/swagger is installed. */
export const sessionPrivacyOpenApiProvider: Provider = {
  provide: SESSION_PRIVACY_OPENAPI,
  useFactory: async () => {
    const swagger = await loadSwagger();
    if (swagger) documentSessionPrivacyApi(swagger);
    return swagger !== undefined;
  },
};
