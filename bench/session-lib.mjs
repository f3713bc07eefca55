// What the bench uses of a build: the public API plus the internals it measures directly.
// Internals are imported by module path (index.js exports only the public API); a build from
// before the curated index exported them all from index.js, so its names are used as they are.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const INTERNALS = {
  'session/session-validator.js': ['SessionValidator'],
  'session/store/session.store.js': ['SessionStore'],
  'session/store/session.sql.js': ['SESSION_SQL'],
  'session/token/session-token.js': ['hashToken'],
  'session/purge/purge.store.js': ['PurgeStore'],
  'session/session.options.js': ['resolveSessionOptions'],
};

/** `dist`: a build's dist/ directory, as a path or a file URL. */
export async function loadSessionLib(distPathOrUrl) {
  const dist = distPathOrUrl.startsWith('file:') ? fileURLToPath(distPathOrUrl) : distPathOrUrl;
  const lib = { ...(await import(pathToFileURL(`${dist}/src/session/index.js`).href)) };
  for (const [file, names] of Object.entries(INTERNALS)) {
    const path = `${dist}/src/${file}`;
    if (!existsSync(path)) continue;
    const module = await import(pathToFileURL(path).href);
    for (const name of names) lib[name] ??= module[name];
  }
  // Before the SQL moved to session.sql.ts, statements were plain strings.
  if (typeof lib.SESSION_SQL?.lookupByTokenHash === 'string') {
    lib.SESSION_SQL = Object.fromEntries(Object.entries(lib.SESSION_SQL).map(([name, text]) => [name, { name, text }]));
  }
  return lib;
}
