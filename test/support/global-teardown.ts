import type { EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __embeddedPostgres?: EmbeddedDatabase }).__embeddedPostgres?.stop();
}
