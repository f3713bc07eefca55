import { CreateSessionTables1763780000000 } from './1763780000000-CreateSessionTables.js';
import { CreateSessionPurgeRuns1796169600000 } from './1796169600000-CreateSessionPurgeRuns.js';
import { CreateSessionRetiredTokens1796342400000 } from './1796342400000-CreateSessionRetiredTokens.js';

/** Add these to your DataSource's `migrations` (the module never uses `synchronize`). */
export const sessionMigrations = [
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  CreateSessionRetiredTokens1796342400000,
];

export {
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  CreateSessionRetiredTokens1796342400000,
};
