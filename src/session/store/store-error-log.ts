import { Logger } from '@nestjs/common';
import { statementName } from './statement-names.js';

/** Runs of hex (a token hash, `\x...` bytea) or a 43-character base64url string (a token) never reach a log line. */
const SECRET_LIKE = /\\?x?[0-9a-f]{32,}|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/gi;

export function redactSecrets(text: string): string {
  return text.replace(SECRET_LIKE, '[redacted]');
}

/** "TypeError: message (cause: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432)", secrets redacted. */
export function describeStoreError(error: unknown): string {
  const describe = (e: unknown) => {
    const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
    return [typeof code === 'string' ? code : undefined, typeof message === 'string' ? message : String(e)]
      .filter(Boolean)
      .join(' ');
  };
  const cause = (error as { cause?: unknown })?.cause;
  // pg's DatabaseError is named 'error'; its class says more.
  const name = error instanceof Error ? `${error.name === 'error' ? error.constructor.name : error.name}: ` : '';
  return redactSecrets(`${name}${describe(error)}${cause ? ` (cause: ${describe(cause)})` : ''}`);
}

/**
 * Warnings for failed store statements, with their cause. An outage fails every request, so
 * each statement name warns at most once per interval, with the number held back since.
 */
export class StoreErrorLog {
  private readonly logger = new Logger('SessionStore');
  private readonly lastWarned = new Map<string, { at: number; heldBack: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  report(text: string, error: unknown): void {
    // Data exceptions (22xxx, e.g. an escape jsonb refuses) are the caller's input, answered 400: not a store fault, and their text may quote user data.
    if (String((error as { code?: unknown })?.code ?? '').startsWith('22')) return;
    const statement = statementName(text);
    const now = performance.now();
    const last = this.lastWarned.get(statement);
    if (last && now - last.at < this.intervalMs) {
      last.heldBack++;
      return;
    }
    const heldBack = last?.heldBack
      ? ` (${last.heldBack} more failures of it in the last ${Math.round((now - last.at) / 1000)} s)`
      : '';
    this.lastWarned.set(statement, { at: now, heldBack: 0 });
    this.logger.warn(`statement ${statement} failed: ${describeStoreError(error)}${heldBack}`);
  }
}
