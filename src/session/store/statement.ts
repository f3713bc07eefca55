/**
 * One SQL statement, complete as it runs, and the name that logs and the metrics'
 * `statement` label give it (the name of its constant in a `*.sql.ts` file).
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
  /** A server-side prepared statement of that name (the hot path only); otherwise parsed per run. */
  readonly preparedAs?: string;
}
