import { SQL } from './session.store.js';

let names: Map<string, string> | undefined;

/**
 * The name of a store statement's SQL constant (`lookupByTokenHash`, `rotate`, ...), for
 * logs and metrics labels: a fixed, small set that points at one line of session.store.ts.
 * Built on first use (session.store.ts imports this module's users).
 */
export function statementName(text: string): string {
  names ??= new Map<string, string>([
    ...Object.entries(SQL).map(([name, sql]) => [sql, name] as [string, string]),
    ['BEGIN', 'begin'], ['COMMIT', 'commit'],
  ]);
  return names.get(text) ?? 'other';
}
