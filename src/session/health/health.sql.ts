import type { Statement } from '../store/statement.js';

/** Every statement the health check sends. */
export const HEALTH_SQL = {
  ping: { name: 'ping', text: 'SELECT 1' },
} as const satisfies Record<string, Statement>;
