/** test/support/postgres-passes.mjs, for the TypeScript tests. */
export const PASS_DIRS: string[];
export const NO_SHARED_SERVER: string[];
export const FIRST_SERVER_ONLY: string[];
export const NOT_THROUGH_POOLER: string[];
export const NOT_IN_TRANSACTION_MODE: string[];
export const SESSION_MODE_FILES: string[];
type Env = Record<string, string | undefined>;
export function specFiles(paths: string[], ignored?: string[]): string[];
export function onSecondServer(env?: Env): string[];
export function poolerModes(env?: Env): string[];
export function poolerPassFiles(mode: string, env?: Env): { paths: string[]; ignored: string[]; files: string[] };
export function directPassPlan(env?: Env, pgbouncer?: string | false): { files: string[]; reason: string };
