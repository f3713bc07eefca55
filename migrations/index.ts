import { CreateSessionTables1763780000000 } from './1763780000000-CreateSessionTables.js';
import { CreateSessionPurgeRuns1796169600000 } from './1796169600000-CreateSessionPurgeRuns.js';
import { CreateSessionPurgeLease1796256000000 } from './1796256000000-CreateSessionPurgeLease.js';

/** Add these to your DataSource's `migrations` (the module never uses `synchronize`). */
export const sessionMigrations = [
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  CreateSessionPurgeLease1796256000000,
];

export { CreateSessionTables1763780000000, CreateSessionPurgeRuns1796169600000, CreateSessionPurgeLease1796256000000 };
