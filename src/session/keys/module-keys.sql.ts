import type { Statement } from '../store/statement.js';

/**
 * The statements of ModuleKeyStore over `session_module_keys` (one row per named key). A key is
 * created by whichever instance asks first: INSERT ... ON CONFLICT DO NOTHING, then a fresh
 * read, so instances starting together all read the one row that won.
 */
export const MODULE_KEYS_SQL = {
  /** $1 name. */
  read: { name: 'readModuleKey', text: `SELECT key FROM session_module_keys WHERE name = $1` },
  /** $1 name, $2 the 32 random bytes this instance would like to be the key; a row already there wins. */
  create: {
    name: 'createModuleKey',
    text: `INSERT INTO session_module_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
  },
} as const satisfies Record<string, Statement>;
