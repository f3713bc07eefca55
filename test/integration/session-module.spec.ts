import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionModule, SessionOptionsError, SessionService } from '../../src/session/index.js';
import { SESSION_OPTIONS } from '../../src/session/session.constants.js';
import { type ResolvedSessionOptions } from '../../src/session/session.options.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

@Injectable()
class FakeConfig {
  get(key: string) {
    return ({ SESSION_IDLE: '10m', SESSION_ABSOLUTE: '8h' } as Record<string, string>)[key];
  }
}

@Module({ providers: [FakeConfig], exports: [FakeConfig] })
class ConfigModule {}

describe('SessionModule wiring', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const typeorm = () =>
    TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 });

  it('forRootAsync takes options from an injected config provider', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        typeorm(),
        SessionModule.forRootAsync({
          imports: [ConfigModule],
          inject: [FakeConfig],
          useFactory: (config: FakeConfig) => ({
            idleTimeout: config.get('SESSION_IDLE'),
            absoluteTimeout: config.get('SESSION_ABSOLUTE'),
          }),
        }),
      ],
    }).compile();
    const options = moduleRef.get<ResolvedSessionOptions>(SESSION_OPTIONS);
    expect(options).toMatchObject({
      idleTimeoutMs: 600_000,
      absoluteTimeoutMs: 8 * 3_600_000,
      touchIntervalMs: 60_000,
    });
    expect(moduleRef.get(SessionService)).toBeInstanceOf(SessionService);
    await moduleRef.close();
  });

  it.each([
    [{ idleTimeout: '13h' }, /idleTimeout/],
    [{ idleTimeout: '-5m' }, /idleTimeout/],
    [{ cookie: { secure: false } }, /cookie\.name.*__Host-/],
    [{ touchInterval: '30m' }, /touchInterval/],
    [{ idleTimout: '5m' }, /idleTimout/],
  ])('refuses to start with invalid options %j', async (options, message) => {
    const compiling = Test.createTestingModule({
      imports: [typeorm(), SessionModule.forRoot(options as never)],
    }).compile();
    await expect(compiling).rejects.toThrow(SessionOptionsError);
    await expect(
      Test.createTestingModule({ imports: [typeorm(), SessionModule.forRoot(options as never)] }).compile(),
    ).rejects.toThrow(message);
  });
});
