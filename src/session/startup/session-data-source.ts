import { Logger, type FactoryProvider, type Provider } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { within } from '../store/bounded-wait.js';
import { findMissingSchema, SessionSchemaError } from './session-schema.js';

/** The TypeORM DataSource the module uses, checked once at start-up (see sessionDataSourceProvider). */
export const SESSION_DATA_SOURCE = Symbol('SESSION_DATA_SOURCE');

/** How long start-up waits for the schema check before it goes on without an answer. */
export const SCHEMA_CHECK_TIMEOUT_MS = 10_000;

/** TypeORM's own pg pool: the module speaks SQL through it (prepared statements on the hot path), no second pool. */
export function poolOf(dataSource: DataSource): Pool {
  return (dataSource.driver as unknown as { master: Pool }).master;
}

/**
 * The DataSource, injected optionally so that an app without TypeOrmModule.forRoot gets a
 * message naming it (not Nest's "can't resolve dependencies of SessionMetrics"), and checked
 * before any other session provider starts: a PostgreSQL one, with the session tables. A
 * session library that starts without its tables would answer 500 at the first login; it
 * refuses to start instead. A database that does not answer the check (it went away after
 * TypeORM connected) does not stop the app, as before: sessions answer 503 until it returns.
 */
export function sessionDataSourceProvider(name: string | undefined): Provider {
  return {
    provide: SESSION_DATA_SOURCE,
    useFactory: async (dataSource: DataSource | undefined): Promise<DataSource> => {
      if (!dataSource) throw new Error(missingDataSourceMessage(name));
      const type = dataSource.options?.type;
      if (type !== undefined && type !== 'postgres')
        throw new Error(
          `nest-pg-session needs a PostgreSQL DataSource (TypeOrmModule.forRoot({ type: 'postgres', ... })), ` +
            `but the ${name ? `'${name}'` : 'default'} DataSource is type '${type}'.`,
        );
      if (dataSource.isInitialized) await checkSchema(poolOf(dataSource));
      return dataSource;
    },
    inject: [{ token: getDataSourceToken(name), optional: true }],
  };
}

/**
 * TypeOrmModule.forFeature(entities): the call registers the entities for `autoLoadEntities`;
 * its repositories are provided here on SESSION_DATA_SOURCE instead of importing its module,
 * whose repositories inject the DataSource directly, so that without TypeOrmModule.forRoot Nest
 * would report "can't resolve dependencies of the UserSessionEntityRepository" before the
 * message above could name TypeOrmModule.
 */
export function sessionRepositoryProviders(
  entities: Parameters<typeof TypeOrmModule.forFeature>[0],
  name: string | undefined,
): Provider[] {
  const feature = TypeOrmModule.forFeature(entities, name);
  return (feature.providers as FactoryProvider[]).map((provider) => ({ ...provider, inject: [SESSION_DATA_SOURCE] }));
}

function missingDataSourceMessage(name: string | undefined): string {
  const forRoot = name
    ? `TypeOrmModule.forRoot({ name: '${name}', type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, migrations: sessionMigrations, migrationsRun: true })`
    : `TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, migrations: sessionMigrations, migrationsRun: true })`;
  return (
    `nest-pg-session: SessionModule found no TypeORM DataSource${name ? ` named '${name}'` : ''}. ` +
    `Import ${forRoot} (from '@nestjs/typeorm') in the app's root module, beside SessionModule` +
    (name ? '.' : ', or pass `dataSource: <name>` to SessionModule.forRoot when the DataSource has a name.')
  );
}

async function checkSchema(pool: Pool): Promise<void> {
  const logger = new Logger('SessionModule');
  let missing;
  try {
    missing = await within(findMissingSchema(pool), SCHEMA_CHECK_TIMEOUT_MS, () => {
      throw Object.assign(new Error(`no answer within ${SCHEMA_CHECK_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' });
    });
  } catch (error) {
    // to_regclass() needs no privilege and raises nothing for a missing table: what fails here
    // is the connection, and the store turns that into 503s until the database is back.
    logger.warn(
      `could not check the session tables at start-up (${(error as Error).message}); ` +
        'starting anyway: sessions answer 503 until the database answers',
    );
    return;
  }
  if (missing) throw new SessionSchemaError(missing);
}
