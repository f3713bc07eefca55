// A throwaway database for one bench run, on the server the bench was pointed at.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Creates `${prefix}_<random hex>` on the server at `serverUrl` (a URL whose user may CREATE
 * DATABASE). Returns its name, a connection `url` to it, and `drop()`, which removes it even
 * with connections still open (WITH (FORCE)) and never throws, so a `finally` can always call it.
 */
export async function createScratchDatabase(serverUrl, prefix) {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end();
    throw error;
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end().catch(() => undefined);
    },
  };
}
