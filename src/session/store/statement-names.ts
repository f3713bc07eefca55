import { SQL, SQL_WITHOUT_NOTIFY } from './session.store.js';

let names: Map<string, string> | undefined;

/**
 * The name of a store statement's SQL constant (`lookupByTokenHash`, `rotate`, ...), for
 * logs and metrics labels: a fixed, small set that points at one line of session.store.ts.
 * Built on first use (session.store.ts imports this module's users).
 */
export function statementName(text: string): string {
  names ??= new Map<string, string>([
    ...[SQL, SQL_WITHOUT_NOTIFY].flatMap((set) =>
      Object.entries(set).map(([name, sql]) => [sql, name] as [string, string]),
    ),
    ['BEGIN', 'begin'],
    ['COMMIT', 'commit'],
  ]);
  return names.get(text) ?? 'other';
}
