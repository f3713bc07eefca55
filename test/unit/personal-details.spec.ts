import { describe, expect, it } from '@jest/globals';
import type { QueryRunner } from 'typeorm';
import { AddAuditPersonalDataIndex1796688000001 } from '../../migrations/1796688000001-AddAuditPersonalDataIndex.js';
import { HOLDS_PERSONAL_DATA, withoutPersonalDetails } from '../../src/session/privacy/personal-details.js';
import { PRIVACY_SQL } from '../../src/session/privacy/privacy.sql.js';
import { RETENTION_SQL } from '../../src/session/privacy/retention.sql.js';

describe('personal details in SQL', () => {
  it("the retention step repeats the partial index's predicate word for word (the planner needs that)", async () => {
    const sent: string[] = [];
    const runner = { query: async (text: string) => void sent.push(text) } as unknown as QueryRunner;
    await new AddAuditPersonalDataIndex1796688000001().up(runner);
    const predicate = /WHERE (\(.*\))\s*$/s.exec(sent[0])![1];
    expect(predicate).toBe(HOLDS_PERSONAL_DATA);
    expect(RETENTION_SQL.clearPersonalData.text).toContain(`AND ${predicate}`);
  });

  it('retention and erasure strip the same fields', () => {
    const strip = /SET (ip = NULL, user_agent = NULL, details = details - ARRAY\[[^\]]*\])/;
    const retention = strip.exec(RETENTION_SQL.clearPersonalData.text)![1];
    expect(PRIVACY_SQL.anonymiseAudit.text).toContain(retention);
    expect(PRIVACY_SQL.deleteAudit.text).toContain(retention);
    expect(retention).toContain(`ARRAY['from', 'to', 'user_agents']`);
  });

  it('withoutPersonalDetails keeps every other key', () => {
    expect(withoutPersonalDetails({ from: 'a', to: 'b', user_agents: [], reason: 'x', count: 2 })).toEqual({
      reason: 'x',
      count: 2,
    });
  });
});
