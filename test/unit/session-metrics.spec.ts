import { describe, expect, it } from '@jest/globals';
import type { Pool } from 'pg';
import { Counter, Registry } from 'prom-client';
import { SessionOptionsError } from '../../src/session/index.js';
import { NoopSessionMetrics, OUTCOME_OF_REASON } from '../../src/session/metrics/session-metrics.js';
import { resolveSessionOptions } from '../../src/session/session.options.js';
import {
  createSessionMetrics,
  loadPromClient,
  PrometheusSessionMetrics,
} from '../../src/session/metrics/prometheus-session-metrics.js';
import { Logger } from '@nestjs/common';
import { describeStoreError, redactSecrets, StoreErrorLog } from '../../src/session/store/pg-errors.js';
import { SESSION_SQL } from '../../src/session/store/session.sql.js';
import { CapturingLogger } from '../support/log-capture.js';

const noPool = {} as Pool;
const notInstalled = () =>
  Promise.reject(Object.assign(new Error("Cannot find package 'prom-client'"), { code: 'ERR_MODULE_NOT_FOUND' }));

describe('metrics options', () => {
  it('are off by default, with the nest_pg_session_ prefix', () => {
    expect(resolveSessionOptions({}).metrics).toEqual({ enabled: false, prefix: 'nest_pg_session_' });
  });

  it("keep a given registry, already holding the host app's metrics, as the very object (class-transformer must not walk it)", () => {
    const registry = new Registry();
    new Counter({ name: 'host_app_requests_total', help: "the host app's own", registers: [registry] });
    const resolved = resolveSessionOptions({ metrics: { enabled: true, prefix: 'app_sessions_', registry } }).metrics;
    expect(resolved.registry).toBe(registry);
    expect(resolved).toMatchObject({ enabled: true, prefix: 'app_sessions_' });
  });

  it.each([
    [{ enabled: 'yes' }, /metrics\.enabled/],
    [{ prefix: 'bad-prefix' }, /metrics\.prefix: must be a Prometheus name prefix/],
    [{ prefix: '9lives_' }, /metrics\.prefix/],
    [{ registry: {} }, /metrics\.registry: must be a prom-client Registry/],
    [{ registry: 'default' }, /metrics\.registry/],
    [{ enabeld: true }, /metrics\.enabeld/],
  ])('refuse %j', (metrics, message) => {
    expect(() => resolveSessionOptions({ metrics: metrics as never })).toThrow(SessionOptionsError);
    expect(() => resolveSessionOptions({ metrics: metrics as never })).toThrow(message);
  });
});

describe('SessionMetrics provider', () => {
  it('is the no-op when disabled, without even importing prom-client', async () => {
    let imported = 0;
    const metrics = await createSessionMetrics(resolveSessionOptions({}).metrics, noPool, () => {
      imported++;
      return import('prom-client');
    });
    expect(metrics).toBeInstanceOf(NoopSessionMetrics);
    expect(metrics.enabled).toBe(false);
    expect(imported).toBe(0);
  });

  it('says how to fix it when enabled but prom-client is not installed', async () => {
    const options = resolveSessionOptions({ metrics: { enabled: true } }).metrics;
    await expect(createSessionMetrics(options, noPool, notInstalled)).rejects.toThrow(SessionOptionsError);
    await expect(loadPromClient(notInstalled)).rejects.toThrow(
      /metrics\.enabled is true, but the optional peer dependency 'prom-client' is not installed: run `npm install prom-client`/,
    );
  });

  it('rethrows other load failures as they are', async () => {
    await expect(loadPromClient(() => Promise.reject(new SyntaxError('boom')))).rejects.toThrow(SyntaxError);
  });

  it('registers its metrics in the given registry and removes them on shutdown', async () => {
    const registry = new Registry();
    const metrics = await createSessionMetrics(
      resolveSessionOptions({ metrics: { enabled: true, prefix: 'x_', registry } }).metrics,
      noPool,
    );
    expect(metrics).toBeInstanceOf(PrometheusSessionMetrics);
    metrics.cacheHit();
    metrics.cacheHit();
    metrics.cacheMiss();
    metrics.validation('expired');
    const text = await registry.metrics(); // no database here: the active_sessions sample fails quietly
    expect(text).toContain('# TYPE x_active_sessions gauge');
    expect(text).toContain('x_cache_hits_total 2');
    expect(text).toContain('x_cache_misses_total 1');
    expect(text).toContain('x_validations_total{outcome="expired"} 1');
    // A second module on the same registry and prefix is told what to do.
    await expect(
      createSessionMetrics(
        resolveSessionOptions({ metrics: { enabled: true, prefix: 'x_', registry } }).metrics,
        noPool,
      ),
    ).rejects.toThrow(/already been registered.*different metrics\.prefix/s);
    (metrics as PrometheusSessionMetrics).onModuleDestroy();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});

describe('store errors in logs', () => {
  const hash = 'a3'.repeat(32);
  const token = 'Q2hhbmdlIG1lIHRvIGEgcmVhbCB0b2tlbiBwbGVhc2U';

  it('redact hashes and tokens', () => {
    expect(token).toHaveLength(43);
    expect(redactSecrets(`Key (token_hash)=(\\x${hash}) already exists`)).toBe(
      'Key (token_hash)=([redacted]) already exists',
    );
    expect(redactSecrets(`bad token ${token}.`)).toBe('bad token [redacted].');
    expect(redactSecrets('connect ECONNREFUSED 127.0.0.1:5432')).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('name the error, its code and its cause', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const error = new Error(`lookup of ${token} failed`, { cause });
    expect(describeStoreError(error)).toBe(
      'Error: lookup of [redacted] failed (cause: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432)',
    );
  });
});

describe('StoreErrorLog', () => {
  it("warns once per statement and interval with the cause, counts the ones held back, and ignores the caller's bad data", async () => {
    const logs = new CapturingLogger();
    Logger.overrideLogger(logs);
    const log = new StoreErrorLog(50);
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 5; i++) log.report(SESSION_SQL.lookupByTokenHash.name, down);
    log.report(SESSION_SQL.rotate.name, down);
    log.report(
      SESSION_SQL.patchData.name,
      Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' }),
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    log.report(SESSION_SQL.lookupByTokenHash.name, down);
    expect(logs.from('SessionStore', 'warn').map((e) => e.message)).toEqual([
      'statement lookupByTokenHash failed: Error: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432',
      'statement rotate failed: Error: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432',
      expect.stringMatching(/^statement lookupByTokenHash failed: .* \(4 more failures of it in the last 0 s\)$/),
    ]);
  });
});

describe('validation outcomes', () => {
  it("count a pending session refused outside its verification route as a refusal ('invalid'), never as ok", () => {
    expect(OUTCOME_OF_REASON.second_factor_required).toBe('invalid');
    // Only the freshness check, which runs after a successful validation, counts as ok.
    const ok = Object.entries(OUTCOME_OF_REASON).filter(([, outcome]) => outcome === 'ok');
    expect(ok.map(([reason]) => reason)).toEqual(['reauth_required']);
  });
});
