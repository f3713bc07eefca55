import { CreateSessionTables1763780000000 } from './1763780000000-CreateSessionTables.js';
import { CreateSessionPurgeRuns1796169600000 } from './1796169600000-CreateSessionPurgeRuns.js';
import { AddSessionLifetimesAndGuests1796428800000 } from './1796428800000-AddSessionLifetimesAndGuests.js';

/** Add these to your DataSource's `migrations` (the module never uses `synchronize`). */
export const sessionMigrations = [
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  AddSessionLifetimesAndGuests1796428800000,
];

export {
  CreateSessionTables1763780000000,
  CreateSessionPurgeRuns1796169600000,
  AddSessionLifetimesAndGuests1796428800000,
};
