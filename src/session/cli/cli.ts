import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { SessionModuleOptions, SessionPurgeOptions } from '../session.options.js';
import type { CliOutput } from './commands.js';
import { CliError, databaseUrlFrom, EXIT } from './database.js';

export const HELP = `Usage: nest-pg-session <command> [options]

Operates the session tables of nest-pg-session in the database at DATABASE_URL
(postgres://user:password@host:5432/database). Nothing else is needed.

Commands:
  migrate                 Create or update the session tables (runs sessionMigrations; safe to
                          repeat, and next to running apps). Options:
                            --migrations-table <name>  TypeORM's migrations table (default: migrations)
  purge                   Delete expired sessions and audit rows past retention, and clear IP
                          addresses and user agents from audit rows past the personal-data
                          retention, once, as the in-app job does (for an external scheduler).
                          Options, else the env vars:
                            --audit-retention <duration|forever>  (AUDIT_RETENTION; default 90d)
                            --personal-data-retention <duration|forever>
                                                                  (PERSONAL_DATA_RETENTION; default 30d)
                            --batch-size <rows>                   (PURGE_BATCH_SIZE)
                            --duty-cycle <0.001..1>               (PURGE_DUTY_CYCLE)
  sessions [--user <id>]  The number of active sessions, or one user's active sessions.
  revoke --user <id>      Revoke every session of a user, audited (revoked, revoked_all) with
                          reason 'admin' and actor --actor <id> (default: cli:<os user name>).
  export-user <id>        Print what the module stores about a user, as JSON: their sessions (with
                          data, never tokens) and audit events (bounded, see docs/privacy.md).
  erase-user <id> --actor <id> [--mode anonymise|delete]
                          Erase a user's personal data in one transaction: delete their sessions,
                          anonymise their audit rows (default: address, user agent and user id
                          replaced by a keyed pseudonym) or delete them (--mode delete); audited as
                          personal_data_erased with actor --actor (required). Safe to repeat.

Options for every command:
  --json                  Print the result as one line of JSON.
  -h, --help              Show this help.

Exit codes:
  0  done (purge: also when skipped because another instance is purging)
  1  failed: the database cannot be reached, refused the login, or a statement failed
  2  usage: unknown command or option, a bad option value, DATABASE_URL unset or not a postgres:// URL
  3  the session tables or the latest migration are missing: run \`nest-pg-session migrate\`
`;

const COMMON = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const COMMANDS = {
  migrate: { 'migrations-table': { type: 'string' } },
  purge: {
    'audit-retention': { type: 'string' },
    'personal-data-retention': { type: 'string' },
    'batch-size': { type: 'string' },
    'duty-cycle': { type: 'string' },
  },
  sessions: { user: { type: 'string' } },
  revoke: { user: { type: 'string' }, actor: { type: 'string' } },
  'export-user': {},
  'erase-user': { actor: { type: 'string' }, mode: { type: 'string' } },
} as const satisfies Record<string, ParseArgsConfig['options']>;
type Command = keyof typeof COMMANDS;
/** The commands that take one positional argument: the user id. */
const WITH_USER_ARGUMENT = new Set<Command>(['export-user', 'erase-user']);

const stdio: CliOutput = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/** Runs one command; resolves with the exit code. Errors the operator can fix are one line on stderr. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, io: CliOutput = stdio): Promise<number> {
  try {
    return await dispatch(argv, env, io);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    io.err(error.message.startsWith('nest-pg-session') ? error.message : `nest-pg-session: ${error.message}`);
    if (error.exitCode === EXIT.usage) io.err('Run `nest-pg-session --help` for the commands and options.');
    return error.exitCode;
  }
}

async function dispatch(argv: string[], env: NodeJS.ProcessEnv, io: CliOutput): Promise<number> {
  const { command, values, positional } = parse(argv);
  if (command === undefined || values.help) {
    io.out(HELP);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const url = databaseUrlFrom(env);
  const json = values.json === true;
  // Loaded only now: Nest, TypeORM and class-validator take a second or two to import, which --help and usage errors need not wait for.
  const { migrate, purge, routeNestLogsToStderr, revoke, sessions } = await import('./commands.js');
  routeNestLogsToStderr(command);
  switch (command) {
    case 'migrate':
      return migrate(url, nonEmpty(values['migrations-table'], '--migrations-table') ?? 'migrations', io);
    case 'purge':
      return purge(url, purgeOptions(values, env), io, json);
    case 'sessions':
      return sessions(url, nonEmpty(values.user, '--user'), io, json);
    case 'revoke': {
      const user = nonEmpty(values.user, '--user');
      if (user === undefined) throw new CliError('revoke needs --user <id>: whose sessions to revoke', EXIT.usage);
      return revoke(url, user, nonEmpty(values.actor, '--actor'), io, json);
    }
    case 'export-user':
    case 'erase-user':
      return privacyCommand(command, positional, values, url, io, json);
  }
}

async function privacyCommand(
  command: 'export-user' | 'erase-user',
  positional: string | undefined,
  values: Values,
  url: URL,
  io: CliOutput,
  json: boolean,
): Promise<number> {
  const { cliUserId, eraseUser, exportUser, ERASURE_MODES } = await import('./privacy-commands.js');
  if (command === 'export-user')
    return exportUser(url, cliUserId(positional, command, 'whose data to print'), io, json);
  const userId = cliUserId(positional, command, 'whose data to erase');
  const actorId = nonEmpty(values.actor, '--actor');
  if (actorId === undefined)
    throw new CliError('erase-user needs --actor <id>: who erases, recorded in the audit log', EXIT.usage);
  const mode = nonEmpty(values.mode, '--mode') ?? 'anonymise';
  if (!(ERASURE_MODES as readonly string[]).includes(mode))
    throw new CliError(`--mode must be one of: ${ERASURE_MODES.join(', ')}`, EXIT.usage);
  return eraseUser(url, userId, { actorId, mode: mode as (typeof ERASURE_MODES)[number] }, io, json);
}

type Values = Record<string, string | boolean | undefined>;
const EVERY_OPTION: ParseArgsConfig['options'] = Object.assign({}, COMMON, ...Object.values(COMMANDS));

/** One util.parseArgs pass over every command's options (so they may come before or after the command), then the command's own check. */
function parse(argv: string[]): { command?: Command; values: Values; positional?: string } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: EVERY_OPTION, allowPositionals: true, strict: true });
  } catch (error) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION, ..._INVALID_OPTION_VALUE: Node's own words.
    throw new CliError((error as Error).message, EXIT.usage);
  }
  const values = parsed.values as Values;
  const [command, ...extra] = parsed.positionals;
  if (command === undefined || command === 'help') return { values: command === 'help' ? { help: true } : values };
  if (!Object.hasOwn(COMMANDS, command))
    throw new CliError(
      `unknown command ${JSON.stringify(command)} (commands: ${Object.keys(COMMANDS).join(', ')})`,
      EXIT.usage,
    );
  const positional = WITH_USER_ARGUMENT.has(command as Command) ? extra.shift() : undefined;
  if (extra.length > 0) throw new CliError(`${command}: unexpected argument ${JSON.stringify(extra[0])}`, EXIT.usage);
  const own = { ...COMMON, ...COMMANDS[command as Command] };
  for (const key of Object.keys(values))
    if (!Object.hasOwn(own, key)) throw new CliError(`${command} does not take --${key}`, EXIT.usage);
  return { command: command as Command, values, positional };
}

function nonEmpty(value: string | boolean | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new CliError(`${flag} needs a value`, EXIT.usage);
  return value.trim();
}

/** Flags first, then the env vars the demo's `npm run purge` has always read; the module's validation names a bad value. */
function purgeOptions(
  values: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
): Pick<SessionModuleOptions, 'purge' | 'privacy'> {
  const pick = (flag: string, name: string) => nonEmpty(values[flag], `--${flag}`) ?? (env[name]?.trim() || undefined);
  const options: SessionPurgeOptions = {};
  const retention = pick('audit-retention', 'AUDIT_RETENTION');
  if (retention !== undefined)
    options.auditRetention = retention === 'forever' ? false : (retention as SessionPurgeOptions['auditRetention']);
  const batchSize = pick('batch-size', 'PURGE_BATCH_SIZE');
  if (batchSize !== undefined) options.batchSize = numberOf(batchSize, 'batch-size', 'PURGE_BATCH_SIZE');
  const dutyCycle = pick('duty-cycle', 'PURGE_DUTY_CYCLE');
  if (dutyCycle !== undefined) options.dutyCycle = numberOf(dutyCycle, 'duty-cycle', 'PURGE_DUTY_CYCLE');
  const personal = pick('personal-data-retention', 'PERSONAL_DATA_RETENTION');
  const privacy =
    personal === undefined ? {} : { personalDataRetention: personal === 'forever' ? (false as const) : personal };
  return { purge: options, privacy };
}

function numberOf(value: string, flag: string, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n))
    throw new CliError(`--${flag} (or ${name}) must be a number, got ${JSON.stringify(value)}`, EXIT.usage);
  return n;
}
