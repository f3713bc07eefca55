import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import {
  directPassPlan,
  FIRST_SERVER_ONLY,
  NO_SHARED_SERVER,
  NOT_IN_TRANSACTION_MODE,
  NOT_THROUGH_POOLER,
  onSecondServer as onSecondServerOf,
  PASS_DIRS,
  poolerPassFiles,
  SESSION_MODE_FILES,
  specFiles,
} from '../support/postgres-passes.mjs';

// The passes after the first one split the integration and e2e files between a direct run on the
// second server and PgBouncer in front of it: a file must not fall between them unnoticed.
const onSecondServer = onSecondServerOf({});
const union = (...lists: string[][]) => [...new Set(lists.flat())].sort();

describe('what the passes on the second PostgreSQL run', () => {
  it('finds every integration and e2e spec, and leaves out only the files that cannot use that server or gain nothing there', () => {
    const all = specFiles(PASS_DIRS);
    expect(all.length).toBeGreaterThan(40);
    expect(all.every((file) => /^test\/(integration|e2e)\/.+\.spec\.ts$/.test(file))).toBe(true);
    expect(all.filter((file) => !onSecondServer.includes(file))).toHaveLength(
      NO_SHARED_SERVER.length + FIRST_SERVER_ONLY.length,
    );
    expect(onSecondServerOf({ SECOND_PASS_FULL: '1' })).toHaveLength(all.length - NO_SHARED_SERVER.length);
  });

  it('names only files that exist: a renamed file cannot drop out of a list silently', () => {
    for (const pattern of [...NOT_THROUGH_POOLER, ...NOT_IN_TRANSACTION_MODE, ...FIRST_SERVER_ONLY])
      expect([pattern, specFiles(PASS_DIRS).filter((file) => new RegExp(pattern).test(file)).length]).toEqual([
        pattern,
        1,
      ]);
    expect(SESSION_MODE_FILES.filter((file) => !existsSync(file))).toEqual([]);
  });

  it('with pgbouncer: the direct pass runs exactly what the pooler passes leave out', () => {
    const pooled = union(poolerPassFiles('transaction', {}).files, poolerPassFiles('session', {}).files);
    const direct = directPassPlan({}, '/usr/sbin/pgbouncer').files;
    expect(direct.filter((file) => pooled.includes(file))).toEqual([]);
    expect(union(direct, pooled)).toEqual([...onSecondServer].sort());
    // What cannot go through a pooler, or only behaves as asserted with session state, runs direct or in session mode.
    expect(direct).toEqual(expect.arrayContaining(['test/integration/session-health.spec.ts']));
    expect(poolerPassFiles('session', {}).files).toEqual(
      expect.arrayContaining(['test/integration/session-cache.spec.ts', 'test/e2e/multi-instance.e2e.spec.ts']),
    );
  });

  it('when the session mode is switched off, the direct pass takes over what only it ran', () => {
    const direct = directPassPlan({ POOLER_PASS_MODES: 'transaction' }, '/usr/sbin/pgbouncer').files;
    expect(direct).toEqual(expect.arrayContaining(['test/integration/session-cache.spec.ts']));
    expect(union(direct, poolerPassFiles('transaction', {}).files)).toEqual([...onSecondServer].sort());
  });

  it('without pgbouncer, or with SECOND_PASS_FULL=1, the direct pass runs every file', () => {
    const without = directPassPlan({}, false);
    expect(without.files).toEqual(onSecondServer);
    expect(without.reason).toMatch(/pgbouncer is not installed/);
    expect(directPassPlan({ SECOND_PASS_FULL: '1' }, '/usr/sbin/pgbouncer').files).toEqual(
      onSecondServerOf({ SECOND_PASS_FULL: '1' }),
    );
  });
});
