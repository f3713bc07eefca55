import { CreateSessionTables1763780000000 } from './1763780000000-CreateSessionTables.js';

/** Add these to your DataSource's `migrations` (the module never uses `synchronize`). */
export const sessionMigrations = [CreateSessionTables1763780000000];

export { CreateSessionTables1763780000000 };
