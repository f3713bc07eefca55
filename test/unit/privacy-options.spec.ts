import { describe, expect, it } from '@jest/globals';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import {
  resolveSessionOptions,
  SessionOptionsError,
  type SessionModuleOptions,
} from '../../src/session/session.options.js';

const DAY = 86_400_000;
const retentionMs = (options: SessionModuleOptions) => resolveSessionOptions(options).privacy.personalDataRetentionMs;

function problem(options: unknown): string {
  try {
    resolveSessionOptions(options as SessionModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(SessionOptionsError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('privacy.personalDataRetention', () => {
  it('defaults to 30 days, and false keeps personal data for the audit log’s whole retention', () => {
    expect(retentionMs({})).toBe(30 * DAY);
    expect(retentionMs({ privacy: {} })).toBe(30 * DAY);
    expect(retentionMs({ privacy: { personalDataRetention: false } })).toBeNull();
    expect(retentionMs({ privacy: { personalDataRetention: '7d' } })).toBe(7 * DAY);
    expect(retentionMs({ privacy: { personalDataRetention: 3_600_000 } })).toBe(3_600_000);
  });

  it('by default never outlives a shorter audit retention, and stays 30 days when audit rows are kept forever', () => {
    expect(retentionMs({ purge: { auditRetention: '14d' } })).toBe(14 * DAY);
    expect(retentionMs({ purge: { auditRetention: false } })).toBe(30 * DAY);
  });

  it('may equal the audit retention (rows of a partition waiting for its drop get cleared)', () => {
    expect(retentionMs({ purge: { auditRetention: '14d' }, privacy: { personalDataRetention: '14d' } })).toBe(14 * DAY);
    expect(retentionMs({ purge: { auditRetention: false }, privacy: { personalDataRetention: '400d' } })).toBe(
      400 * DAY,
    );
  });

  it('given longer than purge.auditRetention, names both options as written', () => {
    expect(problem({ purge: { auditRetention: '14d' }, privacy: { personalDataRetention: '30d' } })).toContain(
      "privacy.personalDataRetention: '30d' must not exceed purge.auditRetention '14d'",
    );
    expect(problem({ privacy: { personalDataRetention: '91d' } })).toContain(
      "privacy.personalDataRetention: '91d' must not exceed purge.auditRetention '90d' (default)",
    );
  });

  it.each([
    [{ personalDataRetention: 0 }, 'privacy.personalDataRetention: must be a positive duration'],
    [{ personalDataRetention: '0d' }, 'privacy.personalDataRetention'],
    [{ personalDataRetention: true }, 'privacy.personalDataRetention'],
    [{ personalDataRetention: '30 days' }, 'privacy.personalDataRetention'],
    [{ truncate: true }, 'privacy.truncate: property truncate should not exist'],
  ])('rejects %j', (privacy, mention) => {
    expect(problem({ privacy })).toContain(mention);
  });

  it('rejects a privacy group that is not an object', () => {
    expect(problem({ privacy: 'strict' })).toMatch(/privacy/);
  });
});

describe('demo privacy environment', () => {
  const config = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x').session;

  it('maps PERSONAL_DATA_RETENTION to privacy.personalDataRetention, forever to false; the module judges it', () => {
    expect(config({}).privacy).toEqual({});
    expect(config({ PERSONAL_DATA_RETENTION: '7d' }).privacy).toEqual({ personalDataRetention: '7d' });
    expect(config({ PERSONAL_DATA_RETENTION: 'forever' }).privacy).toEqual({ personalDataRetention: false });
    expect(() => resolveSessionOptions(config({ PERSONAL_DATA_RETENTION: 'soon' }))).toThrow(
      /privacy\.personalDataRetention/,
    );
    expect(() => resolveSessionOptions(config({ PERSONAL_DATA_RETENTION: '60d', AUDIT_RETENTION: '14d' }))).toThrow(
      /must not exceed purge\.auditRetention '14d'/,
    );
  });
});
