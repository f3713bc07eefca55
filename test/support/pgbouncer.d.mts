/** test/support/pgbouncer.mjs, for the TypeScript tests. */
export interface PgBouncer {
  readonly port: number;
  readonly poolMode: 'transaction' | 'session';
  /** `database` on the test server, through this PgBouncer. */
  url(database: string): string;
  /** What PgBouncer logged so far. */
  log(): string;
  stop(): Promise<void>;
}

export function findPgBouncer(): string | undefined;

export function startPgBouncer(options: {
  serverUrl: string;
  poolMode: 'transaction' | 'session';
  /** Server connections per database (default 20). */
  poolSize?: number;
  /** Server connections for all databases together (default 50). */
  maxServerConnections?: number;
}): Promise<PgBouncer>;
