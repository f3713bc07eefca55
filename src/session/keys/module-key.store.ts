import { randomBytes } from 'node:crypto';
import type { Pool, QueryResultRow } from 'pg';
import { storeQuery } from '../store/bounded-wait.js';
import type { Statement } from '../store/statement.js';
import { MODULE_KEYS_SQL } from './module-keys.sql.js';

/** The keys the module keeps in `session_module_keys`, by name ('user-pseudonym': privacy/pseudonym.ts). */
export type ModuleKeyName = 'audit-cursor' | 'user-pseudonym';

export const MODULE_KEY_BYTES = 32;

/**
 * Secret keys the module generates once and keeps in the database, so that every instance
 * uses the same key and a restart does not change it (e.g. the audit cursors' MAC key).
 * Generated in Node (CSPRNG), never derived from anything guessable; read once per process
 * and kept in memory. Whoever can read the table can read the keys: they protect what a
 * client holds (a cursor), not what the database holds.
 */
export class ModuleKeyStore {
  private readonly keys = new Map<ModuleKeyName, Promise<Buffer>>();

  constructor(
    private readonly pool: Pool,
    private readonly queryTimeoutMs = 10_000,
  ) {}

  /** The key named `name`, created on first use. A failed read is not remembered: the next call tries again. */
  key(name: ModuleKeyName): Promise<Buffer> {
    let key = this.keys.get(name);
    if (!key) {
      key = this.readOrCreate(name);
      this.keys.set(name, key);
      key.catch(() => this.keys.delete(name));
    }
    return key;
  }

  private async readOrCreate(name: ModuleKeyName): Promise<Buffer> {
    const existing = await this.read(name);
    if (existing) return existing;
    await this.run(MODULE_KEYS_SQL.create, [name, randomBytes(MODULE_KEY_BYTES)]);
    // Read again rather than trust our own bytes: a concurrent instance's insert may have won.
    const key = await this.read(name);
    if (!key) throw new Error(`nest-pg-session: the module key '${name}' was not stored`);
    return key;
  }

  private async read(name: ModuleKeyName): Promise<Buffer | undefined> {
    const [row] = await this.run(MODULE_KEYS_SQL.read, [name]);
    return row?.key as Buffer | undefined; // at least 32 bytes: the table's CHECK
  }

  private run(statement: Statement, values: unknown[]): Promise<QueryResultRow[]> {
    return storeQuery(this.pool, statement, values, this.queryTimeoutMs);
  }
}
