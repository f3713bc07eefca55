import { DEFAULTS } from '../../src/session/session.options.js';

// Jest setupFiles: runs before each test file, in its module registry. The pooler pass
// (test/support/pooler-pass.mjs) runs the suites through PgBouncer in transaction mode with
// NPS_TEST_PREPARED_STATEMENTS=off: every SessionModule and SessionStore a test builds then
// defaults to `preparedStatements: false`, as an app behind that pooler would configure it
// (demo processes get SESSION_PREPARED_STATEMENTS=off from the same pass).
const setting = process.env.NPS_TEST_PREPARED_STATEMENTS;
if (setting !== undefined && setting !== 'on' && setting !== 'off')
  throw new Error(`NPS_TEST_PREPARED_STATEMENTS must be 'on' or 'off', got '${setting}'`);
if (setting === 'off') (DEFAULTS as { preparedStatements: boolean }).preparedStatements = false;
