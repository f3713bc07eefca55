import type { Pool } from 'pg';

/**
 * What each session migration creates that the module cannot work without, newest last. When
 * a migration is added to `sessionMigrations`, add what it creates here (a unit test fails
 * until every migration has an entry), so an app that missed it refuses to start. A migration
 * that adds a column names it as `table.column`.
 */
export const SESSION_SCHEMA: readonly { readonly migration: string; readonly relations: readonly string[] }[] = [
  { migration: 'CreateSessionTables1763780000000', relations: ['user_sessions', 'session_audit_log'] },
  { migration: 'CreateSessionPurgeRuns1796169600000', relations: ['session_purge_runs'] },
  { migration: 'CreateSessionPurgeLease1796212800000', relations: ['session_purge_lease'] },
  // A partitioned audit log always has its DEFAULT partition; the plain table of before has none.
  { migration: 'PartitionSessionAuditLog1796256000000', relations: ['session_audit_log_default'] },
  { migration: 'CreateSessionRetiredTokens1796342400000', relations: ['session_retired_tokens'] },
  { migration: 'AddSessionLifetimesAndGuests1796428800000', relations: ['user_sessions.lifetime'] },
  { migration: 'CreateSessionModuleKeys1796515200000', relations: ['session_module_keys'] },
  { migration: 'IndexAuditLogByNetwork1796515200001', relations: ['session_audit_log_inet_idx'] },
  {
    migration: 'AddSessionImpersonation1796601600000',
    relations: ['user_sessions.impersonator_id', 'user_sessions.impersonator_session_id'],
  },
  {
    migration: 'AddSessionSecondFactor1796688000000',
    relations: ['user_sessions.second_factor_pending', 'user_sessions.second_factor_attempts'],
  },
  { migration: 'AddAuditPersonalDataIndex1796688000001', relations: ['session_audit_log_personal_idx'] },
];

/**
 * One statement: the relations (and `table.column`s) that do not resolve on the connection's
 * search_path, as the store's SQL would see them.
 */
export const SCHEMA_CHECK_SQL = `
  SELECT r AS relation FROM unnest($1::text[]) AS r
  WHERE CASE WHEN position('.' IN r) = 0 THEN to_regclass(r) IS NULL
        ELSE NOT EXISTS (SELECT 1 FROM pg_attribute
                         WHERE attrelid = to_regclass(split_part(r, '.', 1)) AND attname = split_part(r, '.', 2)
                           AND NOT attisdropped) END`;

/** How to create the tables, in the words of every message that finds them missing. */
export const HOW_TO_MIGRATE =
  "Run the migrations in `sessionMigrations` (import { sessionMigrations } from 'nest-pg-session'): either in " +
  'TypeOrmModule.forRoot({ ..., migrations: sessionMigrations, migrationsRun: true }), or once with ' +
  '`DATABASE_URL=postgres://... npx nest-pg-session migrate`. ' +
  '`synchronize: true` does not create them: the session tables come from the migrations only.';

export interface MissingSchema {
  /** The relations that are not there, e.g. ['session_purge_runs']. */
  relations: string[];
  /** The migrations that create them, oldest first. */
  migrations: string[];
}

/** The session relations this database lacks; undefined when all are there. */
export async function findMissingSchema(pool: Pick<Pool, 'query'>): Promise<MissingSchema | undefined> {
  const wanted = SESSION_SCHEMA.flatMap((m) => m.relations);
  const { rows } = await pool.query<{ relation: string }>(SCHEMA_CHECK_SQL, [wanted]);
  if (rows.length === 0) return undefined;
  const absent = rows.map((row) => row.relation);
  // A column of a missing table says nothing more: name the table only.
  const relations = absent.filter((r) => !(r.includes('.') && absent.includes(r.split('.')[0])));
  const migrations = SESSION_SCHEMA.filter((m) => m.relations.some((r) => absent.includes(r))).map((m) => m.migration);
  return { relations, migrations };
}

/** The session tables (or what later migrations add) are missing: start-up and the CLI say so and stop. */
export class SessionSchemaError extends Error {
  constructor(readonly missing: MissingSchema) {
    const all = missing.migrations.length === SESSION_SCHEMA.length;
    super(
      all
        ? `nest-pg-session: the session tables do not exist in this database (missing: ${missing.relations.join(', ')}). ${HOW_TO_MIGRATE}`
        : `nest-pg-session: the database lacks the session migration${missing.migrations.length > 1 ? 's' : ''} ${missing.migrations.join(', ')} ` +
            `(missing: ${missing.relations.join(', ')}). ${HOW_TO_MIGRATE}`,
    );
    this.name = 'SessionSchemaError';
  }
}
