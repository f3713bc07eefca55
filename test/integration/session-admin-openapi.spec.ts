import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  AUDIT_EVENTS,
  SESSION_BEARER_SECURITY,
  SESSION_COOKIE_SECURITY,
  SessionModule,
} from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** How an app documents its API with the admin routes in it (the README snippet). */
const documentOf = (app: INestApplication): OpenAPIObject =>
  SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('app')
      .addCookieAuth('__Host-sid', { type: 'apiKey', in: 'cookie' }, SESSION_COOKIE_SECURITY) // 'session-cookie'
      .addBearerAuth({ type: 'http', scheme: 'bearer' }, SESSION_BEARER_SECURITY) // 'session-bearer'
      .build(),
  );

describe('OpenAPI document of the admin API (@nestjs/swagger installed)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let doc: OpenAPIObject;
  beforeAll(async () => {
    db = await createTestDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot({ admin: { enabled: true, path: 'internal/admin', authorize: () => true } }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    doc = documentOf(app); // before init, as apps do between NestFactory.create() and listen()
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('lists every admin route under its tag, with both session security schemes and the error responses', () => {
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/internal/admin/sessions/audit',
      '/internal/admin/sessions/audit/summary',
      '/internal/admin/sessions/{id}',
      '/internal/admin/users/{userId}/personal-data',
      '/internal/admin/users/{userId}/sessions',
    ]);
    const operations = [
      doc.paths['/internal/admin/sessions/audit'].get,
      doc.paths['/internal/admin/sessions/audit/summary'].get,
      doc.paths['/internal/admin/sessions/{id}'].delete,
      doc.paths['/internal/admin/users/{userId}/sessions'].get,
      doc.paths['/internal/admin/users/{userId}/sessions'].delete,
      doc.paths['/internal/admin/users/{userId}/personal-data'].get,
      doc.paths['/internal/admin/users/{userId}/personal-data'].delete,
    ];
    for (const operation of operations) {
      expect(operation?.tags).toEqual(['session-admin']);
      expect(operation?.summary).toEqual(expect.any(String));
      expect(operation?.security).toEqual(expect.arrayContaining([{ 'session-cookie': [] }, { 'session-bearer': [] }]));
      expect(Object.keys(operation!.responses)).toEqual(expect.arrayContaining(['401', '403', '503']));
    }
    expect(doc.components?.securitySchemes).toMatchObject({ 'session-cookie': { in: 'cookie', name: '__Host-sid' } });
  });

  it('documents the audit query parameters and the page schema', () => {
    const operation = doc.paths['/internal/admin/sessions/audit'].get!;
    const parameters = operation.parameters as Array<{ name: string; in: string; required: boolean; schema: any }>;
    expect(parameters.map((p) => p.name).sort()).toEqual([
      'actorId',
      'cursor',
      'events',
      'from',
      'ip',
      'limit',
      'sessionId',
      'to',
      'userId',
    ]);
    expect(parameters.every((p) => p.in === 'query' && p.required === false)).toBe(true);
    const byName = Object.fromEntries(parameters.map((p) => [p.name, p.schema]));
    expect(byName.events).toMatchObject({ type: 'array', items: { type: 'string', enum: [...AUDIT_EVENTS] } });
    expect(byName.limit).toMatchObject({ type: 'integer', minimum: 1, maximum: 500, default: 50 });
    expect(byName.sessionId).toMatchObject({ type: 'string', format: 'uuid' });

    const page = (operation.responses['200'] as any).content['application/json'].schema;
    expect(page.required).toEqual(['items', 'nextCursor']);
    expect(page.properties.items.items.properties.event.enum).toEqual([...AUDIT_EVENTS]);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '503']);
  });

  it('documents the summary parameters, the session list and the revocation answers', () => {
    const summary = doc.paths['/internal/admin/sessions/audit/summary'].get!;
    const parameters = summary.parameters as Array<{ name: string; required: boolean; schema: any }>;
    expect(parameters.map((p) => [p.name, p.required]).sort()).toEqual([
      ['bucket', true],
      ['from', true],
      ['to', true],
    ]);
    expect(parameters.find((p) => p.name === 'bucket')!.schema.enum).toEqual(['minute', 'hour', 'day']);

    const list = doc.paths['/internal/admin/users/{userId}/sessions'].get!;
    expect(list.parameters as Array<{ name: string; in: string }>).toEqual([
      expect.objectContaining({ name: 'userId', in: 'path' }),
    ]);
    expect((list.responses['200'] as any).content['application/json'].schema.items.properties.current).toEqual(
      expect.objectContaining({ type: 'boolean' }),
    );

    const revoke = doc.paths['/internal/admin/sessions/{id}'].delete!;
    expect(Object.keys(revoke.responses)).toEqual(expect.arrayContaining(['204', '404']));
    const revokeAll = doc.paths['/internal/admin/users/{userId}/sessions'].delete!;
    expect((revokeAll.responses['200'] as any).content['application/json'].schema.properties.revoked.type).toBe(
      'integer',
    );
  });

  it('documents the personal-data export and erasure: the mode parameter and both answers', () => {
    const exported = doc.paths['/internal/admin/users/{userId}/personal-data'].get!;
    const exportSchema = (exported.responses['200'] as any).content['application/json'].schema;
    expect(exportSchema.required).toEqual(['userId', 'exportedAt', 'sessions', 'auditEvents', 'truncated']);
    expect(exportSchema.properties.sessions.items.properties).not.toHaveProperty('tokenHash');
    const erase = doc.paths['/internal/admin/users/{userId}/personal-data'].delete!;
    const parameters = erase.parameters as Array<{ name: string; in: string; required: boolean; schema: any }>;
    expect(parameters.map((p) => [p.name, p.in]).sort()).toEqual([
      ['mode', 'query'],
      ['userId', 'path'],
    ]);
    expect(parameters.find((p) => p.name === 'mode')!.schema).toMatchObject({ enum: ['anonymise', 'delete'] });
    expect(Object.keys(erase.responses).sort()).toEqual(['200', '400', '401', '403', '503']);
    const erasure = (erase.responses['200'] as any).content['application/json'].schema;
    expect(erasure.properties.mode.enum).toEqual(['anonymise', 'delete']);
  });
});
