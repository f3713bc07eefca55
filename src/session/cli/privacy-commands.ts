import { ID_PATTERN } from '../audit/audit-query.dto.js';
import { SessionPrivacyStore, type ErasureMode } from '../privacy/privacy.store.js';
import { SessionPrivacyService } from '../privacy/session-privacy.service.js';
import type { CliOutput } from './commands.js';
import { withStore } from './commands.js';
import { CliError, EXIT } from './database.js';

export { ERASURE_MODES } from '../privacy/erase-user.dto.js';

/** A user id as the library takes it, checked before anything connects. */
export function cliUserId(value: string | undefined, command: string, what: string): string {
  if (value === undefined) throw new CliError(`${command} needs the user id: ${what}`, EXIT.usage);
  if (!ID_PATTERN.test(value))
    throw new CliError(`${command}: the user id must be 1..255 characters without control characters`, EXIT.usage);
  return value;
}

/**
 * `export-user <id>`: the user's sessions (with their data, never tokens) and audit events, as
 * the admin API's GET .../personal-data answers them: indented JSON, one line with --json.
 */
export async function exportUser(url: URL, userId: string, io: CliOutput, json: boolean): Promise<number> {
  return withStore(url, async (pool, store) => {
    const exported = await new SessionPrivacyService(new SessionPrivacyStore(pool), store).exportUser(userId);
    // JSON escapes C0 controls; C1 ones (terminal escapes on some terminals) are escaped too.
    io.out(JSON.stringify(exported, null, json ? undefined : 2).replace(/[\u007f-\u009f]/g, escapeChar));
    return EXIT.ok;
  });
}

/**
 * `erase-user <id> --actor <id> [--mode anonymise|delete]`: SessionPrivacyService.eraseUser, in
 * one transaction; running instances drop the deleted sessions on the NOTIFY it sends.
 */
export async function eraseUser(
  url: URL,
  userId: string,
  options: { actorId: string; mode: ErasureMode },
  io: CliOutput,
  json: boolean,
): Promise<number> {
  return withStore(url, async (pool, store) => {
    const result = await new SessionPrivacyService(new SessionPrivacyStore(pool), store).eraseUser(userId, options);
    io.out(
      json
        ? JSON.stringify(result)
        : `erased user ${JSON.stringify(userId)} (mode ${result.mode}, actor ${JSON.stringify(options.actorId)}): ` +
            `${result.sessionsDeleted} sessions and ${result.retiredTokensDeleted} retired tokens deleted, ` +
            `${result.auditRowsAnonymised} audit rows anonymised, ${result.auditRowsDeleted} deleted; ` +
            `audit pseudonym ${result.pseudonym}`,
    );
    return EXIT.ok;
  });
}

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
