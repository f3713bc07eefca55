import { describe, expect, it } from '@jest/globals';
import { AUDIT_SQL } from '../../src/session/audit/audit.sql.js';
import { LISTENER_SQL, PROBE_PREFIX } from '../../src/session/cache/listener.sql.js';
import { AUDIT_RECORD_COLUMNS } from '../../src/session/audit/audit-record.js';
import { HEALTH_SQL } from '../../src/session/health/health.sql.js';
import { IMPERSONATION_SQL } from '../../src/session/impersonation/impersonation.sql.js';
import { METRICS_SQL } from '../../src/session/metrics/metrics.sql.js';
import { PRIVACY_SQL } from '../../src/session/privacy/privacy.sql.js';
import { RETENTION_SQL } from '../../src/session/privacy/retention.sql.js';
import { SECOND_FACTOR_SQL } from '../../src/session/second-factor/second-factor.sql.js';
import { PURGE_SQL } from '../../src/session/purge/purge.sql.js';
import { INVALIDATE_ALL, INVALIDATION_CHANNEL, SESSION_SQL } from '../../src/session/store/session.sql.js';
import type { Statement } from '../../src/session/store/statement.js';

const SETS: Record<string, Record<string, Statement>> = {
  SESSION_SQL,
  IMPERSONATION_SQL,
  PURGE_SQL,
  PRIVACY_SQL,
  RETENTION_SQL,
  SECOND_FACTOR_SQL,
  AUDIT_SQL,
  METRICS_SQL,
  HEALTH_SQL,
  LISTENER_SQL,
};
const ALL = Object.entries(SETS).flatMap(([set, statements]) =>
  Object.entries(statements).map(([key, statement]) => ({ id: `${set}.${key}`, key, ...statement })),
);
const LIVE = 'revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()';
const oneLine = (text: string) => text.replace(/\s+/g, ' ');
const highestParameter = (text: string) => Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));

describe('the SQL files: every statement complete as it runs, named as logs and metrics show it', () => {
  it.each(ALL)('$id is named after its constant', (statement) => {
    expect(statement.name).toBe(statement.key);
    expect(statement.text.trim()).not.toBe('');
  });

  it('names each statement once across the sets, so a log line or metric label points at one statement', () => {
    const names = ALL.map((s) => s.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  it('prepares only the hot path, under the names it always had', () => {
    expect(ALL.filter((s) => s.preparedAs).map((s) => [s.id, s.preparedAs])).toEqual([
      ['SESSION_SQL.lookupByTokenHash', 'nps_lookup'],
      ['SESSION_SQL.touchIfStale', 'nps_touch'],
    ]);
  });

  it('writes "live" out the same way wherever a deadline is compared with now()', () => {
    // deleteWithEvent compares an impersonation's own idle deadline (did the admin's session end it first?), not liveness.
    const live = ALL.filter((s) => /idle_expires_at > now\(\)/.test(s.text) && s.id !== 'SESSION_SQL.deleteWithEvent');
    expect(live.map((s) => s.id).sort()).toEqual(
      [
        'IMPERSONATION_SQL.startImpersonation',
        'IMPERSONATION_SQL.stopImpersonation',
        'METRICS_SQL.countActiveSessions',
        'SECOND_FACTOR_SQL.completeSecondFactor',
        'SECOND_FACTOR_SQL.endPending',
        'SECOND_FACTOR_SQL.failSecondFactor',
        'SECOND_FACTOR_SQL.reserveSecondFactorAttempt',
        'SESSION_SQL.countLiveForUser',
        'SESSION_SQL.create',
        'SESSION_SQL.findLiveById',
        'SESSION_SQL.listForUser',
        'SESSION_SQL.lockGuestByToken',
        'SESSION_SQL.rotate',
        'SESSION_SQL.touchIfStale',
      ].sort(),
    );
    for (const s of live) expect([s.id, oneLine(s.text)]).toEqual([s.id, expect.stringContaining(LIVE)]);
  });

  it('returns every audit row it writes with the columns toAuditRecord() reads', () => {
    for (const s of ALL.filter((s) => /INSERT INTO session_audit_log/.test(s.text))) {
      const inserts = s.text.match(/INSERT INTO session_audit_log/g)!.length;
      const returning = s.text.match(/RETURNING id::text AS id, [^\n]*/g) ?? [];
      expect([s.id, returning]).toEqual([s.id, Array(inserts).fill(`RETURNING ${AUDIT_RECORD_COLUMNS}`)]);
    }
  });

  it("the listener's probe notifies on the invalidation channel with a payload no cache acts on", () => {
    expect(LISTENER_SQL.probe.text).toBe(`SELECT pg_notify('${INVALIDATION_CHANNEL}', $1)`);
    expect(LISTENER_SQL.listen.text).toBe(`LISTEN ${INVALIDATION_CHANNEL}`);
    expect(PROBE_PREFIX).not.toBe(INVALIDATE_ALL);
    expect(PROBE_PREFIX).not.toMatch(/^[0-9a-f-]+$/i); // never the start of a session id
  });

  it('notifies only on the invalidation channel, and only when its last parameter (notify) is true', () => {
    const notifying = ALL.filter((s) => /pg_notify/.test(s.text) && s.id !== 'LISTENER_SQL.probe');
    expect(notifying.map((s) => s.id).sort()).toEqual(
      [
        'IMPERSONATION_SQL.startImpersonation',
        'IMPERSONATION_SQL.stopImpersonation',
        'PURGE_SQL.purgeAbsoluteExpired',
        'PURGE_SQL.purgeIdleExpired',
        'PRIVACY_SQL.deleteSessions',
        'SECOND_FACTOR_SQL.completeSecondFactor',
        'SECOND_FACTOR_SQL.endPending',
        'SECOND_FACTOR_SQL.failSecondFactor',
        'SESSION_SQL.create',
        'SESSION_SQL.deleteWithEvent',
        'SESSION_SQL.patchData',
        'SESSION_SQL.recordClientChange',
        'SESSION_SQL.revoke',
        'SESSION_SQL.revokeAllForUser',
        'SESSION_SQL.rotate',
      ].sort(),
    );
    for (const s of notifying) {
      const notify = `$${highestParameter(s.text)}::boolean`;
      const calls = [...s.text.matchAll(/pg_notify\('([^']*)', ([^)]*\)?)\)/g)];
      expect(calls).toHaveLength(1);
      expect([s.id, calls[0][1]]).toEqual([s.id, INVALIDATION_CHANNEL]);
      expect([s.id, calls[0][2]]).toEqual([s.id, s.id.startsWith('PURGE') ? `'${INVALIDATE_ALL}'` : 'id::text']);
      // The gate sits in the WHERE of the very subquery that calls pg_notify.
      const gated = new RegExp(`SELECT [^()]*pg_notify\\([^)]*\\)[^]*?WHERE \\${notify}`);
      expect([s.id, gated.test(s.text)]).toEqual([s.id, true]);
    }
  });
});
