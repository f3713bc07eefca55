import { describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { sessionMigrations } from '../../migrations/index.js';
import { SESSION_DATA_SOURCE, sessionDataSourceProvider } from '../../src/session/startup/session-data-source.js';
import { SESSION_SCHEMA } from '../../src/session/startup/session-schema.js';
import { captureNestLogs } from '../support/log-capture.js';

describe('the start-up schema check', () => {
  it('knows what every migration in sessionMigrations creates, in the same order (add new ones to SESSION_SCHEMA)', () => {
    const names = sessionMigrations.map((Migration) => new Migration().name);
    expect(SESSION_SCHEMA.map((entry) => entry.migration)).toEqual(names);
    for (const entry of SESSION_SCHEMA) expect(entry.relations.length).toBeGreaterThan(0);
  });

  const provider = sessionDataSourceProvider(undefined) as {
    provide: symbol;
    useFactory: (dataSource?: DataSource) => Promise<DataSource>;
  };
  const fakeDataSource = (query: () => Promise<unknown>) =>
    ({ options: { type: 'postgres' }, isInitialized: true, driver: { master: { query } } }) as unknown as DataSource;

  it('a database that does not answer the check does not stop the app (as before): one warning, sessions answer 503', async () => {
    const logs = captureNestLogs();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const dataSource = fakeDataSource(() => Promise.reject(refused));
    expect(provider.provide).toBe(SESSION_DATA_SOURCE);
    await expect(provider.useFactory(dataSource)).resolves.toBe(dataSource);
    expect(logs.from('SessionModule', 'warn').map((e) => e.message)).toEqual([
      'could not check the session tables at start-up (connect ECONNREFUSED 127.0.0.1:5432); starting anyway: sessions answer 503 until the database answers',
    ]);
    Logger.overrideLogger(true);
  });

  it('refuses a DataSource that is not PostgreSQL, naming its type', async () => {
    const mysql = { options: { type: 'mysql' }, isInitialized: true } as unknown as DataSource;
    await expect(provider.useFactory(mysql)).rejects.toThrow(
      "nest-pg-session needs a PostgreSQL DataSource (TypeOrmModule.forRoot({ type: 'postgres', ... })), but the default DataSource is type 'mysql'.",
    );
  });
});
