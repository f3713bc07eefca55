import { describe, expect, it } from '@jest/globals';
import { DemoConfigError, loadDemoConfig } from '../../src/demo/demo-config.js';
import {
  resolveSessionOptions,
  SessionOptionsError,
  type SessionPurgeOptions,
} from '../../src/session/session.options.js';

const DAY = 86_400_000;
const purge = (options: SessionPurgeOptions) => resolveSessionOptions({ purge: options }).purge;

function problem(options: unknown): string {
  try {
    resolveSessionOptions({ purge: options as SessionPurgeOptions });
  } catch (error) {
    expect(error).toBeInstanceOf(SessionOptionsError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('purge options', () => {
  it('default to every 5 minutes, batches of 5000 at a 10% duty cycle, audit kept 90 days', () => {
    expect(resolveSessionOptions().purge).toEqual({
      enabled: true,
      cron: '*/5 * * * *',
      batchSize: 5_000,
      dutyCycle: 0.1,
      auditRetentionMs: 90 * DAY,
    });
    expect(resolveSessionOptions({ purge: {} }).purge).toEqual(resolveSessionOptions().purge);
  });

  it('take a cron with seconds, a batch size, a duty cycle and a retention as a duration', () => {
    expect(purge({ cron: '30 */2 * * * *', batchSize: 100, dutyCycle: 0.5, auditRetention: '400d' })).toEqual({
      enabled: true,
      cron: '30 */2 * * * *',
      batchSize: 100,
      dutyCycle: 0.5,
      auditRetentionMs: 400 * DAY,
    });
    expect(purge({ dutyCycle: 1 }).dutyCycle).toBe(1);
  });

  it('auditRetention: false keeps audit rows forever; enabled: false schedules nothing', () => {
    expect(purge({ auditRetention: false }).auditRetentionMs).toBeNull();
    expect(purge({ enabled: false }).enabled).toBe(false);
  });

  it.each([
    [{ cron: 'off' }, 'purge.cron: must be a cron expression', 'Unknown alias: off'],
    [{ cron: '* * *' }, 'purge.cron'],
    [{ cron: 5 }, 'purge.cron'],
    [{ batchSize: 0 }, 'purge.batchSize'],
    [{ batchSize: 100_001 }, 'purge.batchSize'],
    [{ batchSize: 2.5 }, 'purge.batchSize'],
    [{ batchSize: '500' }, 'purge.batchSize'],
    [{ dutyCycle: 0 }, 'purge.dutyCycle'],
    [{ dutyCycle: 1.5 }, 'purge.dutyCycle'],
    [{ dutyCycle: '0.5' }, 'purge.dutyCycle'],
    [{ dutyCycle: Number.NaN }, 'purge.dutyCycle'],
    [{ auditRetention: 0 }, 'purge.auditRetention: must be a positive duration'],
    [{ auditRetention: '0d' }, 'purge.auditRetention'],
    [{ auditRetention: true }, 'purge.auditRetention'],
    [{ auditRetention: '90 days' }, 'purge.auditRetention'],
    [{ enabled: 'yes' }, 'purge.enabled'],
    [{ schedule: '5m' }, 'purge.schedule: property schedule should not exist'],
  ])('reject %j', (options, ...mentions) => {
    const message = problem(options);
    for (const mention of mentions) expect(message).toContain(mention);
  });

  it('reject a purge that is not an object', () => {
    expect(problem('off')).toMatch(/purge/);
  });
});

describe('demo purge environment', () => {
  const config = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x').session.purge;

  it('maps PURGE_CRON, AUDIT_RETENTION and PURGE_BATCH_SIZE to the module options', () => {
    expect(config({})).toEqual({});
    expect(
      config({ PURGE_CRON: '*/10 * * * *', AUDIT_RETENTION: '30d', PURGE_BATCH_SIZE: '1000', PURGE_DUTY_CYCLE: '0.5' }),
    ).toEqual({ cron: '*/10 * * * *', auditRetention: '30d', batchSize: 1_000, dutyCycle: 0.5 });
    expect(config({ PURGE_CRON: 'off', AUDIT_RETENTION: 'forever' })).toEqual({
      enabled: false,
      auditRetention: false,
    });
  });

  it('leaves checking the values to the module, which names the bad one', () => {
    expect(() => resolveSessionOptions(loadDemoConfig({ PURGE_CRON: 'hourly-ish' }, 'postgres://x').session)).toThrow(
      /purge\.cron/,
    );
    expect(() => resolveSessionOptions(loadDemoConfig({ PURGE_DUTY_CYCLE: 'half' }, 'postgres://x').session)).toThrow(
      /purge\.dutyCycle/,
    );
    expect(() => loadDemoConfig({ PURGE_BATCH_SIZE: 'lots' }, 'postgres://x')).toThrow(DemoConfigError);
  });
});
