import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  SessionModule,
  SessionOptionsError,
  SessionPurgeService,
  type SessionModuleOptions,
} from '../../src/session/index.js';
import { SESSION_OPTIONS } from '../../src/session/session.constants.js';
import { SESSION_PURGE_JOB } from '../../src/session/purge/session-purge.service.js';
import { type ResolvedSessionOptions } from '../../src/session/session.options.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, startDemo } from '../support/demo.js';
import { CapturingLogger } from '../support/log-capture.js';

@Injectable()
class HostJobs {
  @Cron('0 0 1 1 *', { name: 'host-yearly' })
  yearly() {}
}

describe('purge scheduling (Nest wiring)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  async function start(
    options: SessionModuleOptions,
    extra: { hostSchedule?: boolean; logger?: CapturingLogger } = {},
  ) {
    const builder = Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot(options),
        ...(extra.hostSchedule ? [ScheduleModule.forRoot()] : []),
      ],
      providers: extra.hostSchedule ? [HostJobs] : [],
    });
    const moduleRef = await builder.setLogger(extra.logger ?? new CapturingLogger()).compile();
    await moduleRef.init();
    return moduleRef as INestApplicationContext & { close(): Promise<void> };
  }

  it("registers a started job every 5 minutes by default in the app's SchedulerRegistry, next to the app's own jobs", async () => {
    const app = await start({}, { hostSchedule: true });
    const registry = app.get(SchedulerRegistry);
    const job = registry.getCronJob(SESSION_PURGE_JOB);
    expect(job.cronTime.source).toBe('*/5 * * * *');
    expect(job.isActive).toBe(true);
    // One registry, each job once: the module does not bring a ScheduleModule of its own,
    // which would explore the app's providers again and run its @Cron jobs twice.
    expect([...registry.getCronJobs().keys()].sort()).toEqual(['host-yearly', SESSION_PURGE_JOB]);
    await app.close();
    expect(registry.doesExist('cron', SESSION_PURGE_JOB)).toBe(false);
    expect(job.isActive).toBe(false);
  });

  it('follows purge.cron, and the job really runs the purge on its schedule', async () => {
    const logger = new CapturingLogger();
    const app = await start({ purge: { cron: '* * * * * *' } }, { logger, hostSchedule: true }); // every second
    try {
      expect(app.get(SchedulerRegistry).getCronJob(SESSION_PURGE_JOB).cronTime.source).toBe('* * * * * *');
      await eventually(
        async () => logger.from('SessionPurgeService', 'log').some((l) => l.message.startsWith('purge run {')),
        5_000,
      );
    } finally {
      await app.close();
    }
  });

  it('without ScheduleModule in the app, the purge still runs on its schedule, and stops on shutdown', async () => {
    const logger = new CapturingLogger();
    const app = await start({ purge: { cron: '* * * * * *' } }, { logger });
    await eventually(async () => logger.from('SessionPurgeService', 'log').length > 0, 5_000);
    // The service's own registry (there is no app one): the job is stopped and gone, so no tick follows.
    const registry: SchedulerRegistry = app.get(SessionPurgeService)['scheduler'];
    const job = registry.getCronJob(SESSION_PURGE_JOB);
    expect(job.isActive).toBe(true);
    await app.close();
    expect(job.isActive).toBe(false);
    expect(registry.doesExist('cron', SESSION_PURGE_JOB)).toBe(false);
  });

  it('purge.enabled: false registers no job, and runOnce() still works by hand', async () => {
    const app = await start({ purge: { enabled: false } }, { hostSchedule: true });
    try {
      expect(app.get(SchedulerRegistry).doesExist('cron', SESSION_PURGE_JOB)).toBe(false);
      expect([...app.get(SchedulerRegistry).getCronJobs().keys()]).toEqual(['host-yearly']);
      expect(await app.get(SessionPurgeService).runOnce()).toMatchObject({ sessionsDeleted: 0 });
    } finally {
      await app.close();
    }
  });

  it.each([
    [{ purge: { cron: 'every 5 minutes' } }, /purge\.cron: must be a cron expression/],
    [{ purge: { cron: '61 * * * *' } }, /purge\.cron/],
    [{ purge: { batchSize: 0 } }, /purge\.batchSize/],
    [{ purge: { auditRetention: 0 } }, /purge\.auditRetention/],
    [{ purge: { every: '5m' } }, /purge\.every: property every should not exist/],
  ])('refuses to start with invalid purge options %j', async (options, message) => {
    const compiling = start(options as SessionModuleOptions);
    await expect(compiling).rejects.toThrow(SessionOptionsError);
    await expect(start(options as SessionModuleOptions)).rejects.toThrow(message);
  });

  it('the demo follows PURGE_CRON and AUDIT_RETENTION', async () => {
    const custom = await startDemo('express', { PURGE_CRON: '*/7 * * * *', AUDIT_RETENTION: '30d' }, { url: db.url });
    try {
      expect(custom.app.get(SchedulerRegistry).getCronJob(SESSION_PURGE_JOB).cronTime.source).toBe('*/7 * * * *');
      expect(custom.app.get<ResolvedSessionOptions>(SESSION_OPTIONS).purge.auditRetentionMs).toBe(30 * 86_400_000);
    } finally {
      await custom.app.close();
    }
    const off = await startDemo('express', { PURGE_CRON: 'off', AUDIT_RETENTION: 'forever' }, { url: db.url });
    try {
      expect(off.app.get(SchedulerRegistry).doesExist('cron', SESSION_PURGE_JOB)).toBe(false);
      expect(off.app.get<ResolvedSessionOptions>(SESSION_OPTIONS).purge.auditRetentionMs).toBeNull();
    } finally {
      await off.app.close();
    }
  });
});
