import { afterEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import {
  asStoreError,
  isPoolerPreparedStatementError,
  StoreErrorLog,
  StoreUnavailableError,
  storeErrorCategory,
} from '../../src/session/store/pg-errors.js';
import { captureNestLogs } from '../support/log-capture.js';

/** What pg raises for a DatabaseError: an Error with the SQLSTATE in `code`. */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("a transaction pooler's prepared-statement errors", () => {
  afterEach(() => Logger.overrideLogger(true));

  const duplicate = pgError('42P05', 'prepared statement "nps_lookup" already exists');
  const missing = pgError('26000', 'prepared statement "nps_touch" does not exist');

  it('are store unavailability (503), not a bug (500)', () => {
    for (const error of [duplicate, missing]) {
      expect(isPoolerPreparedStatementError(error)).toBe(true);
      const mapped = asStoreError(error);
      expect(mapped).toBeInstanceOf(StoreUnavailableError);
      expect((mapped as StoreUnavailableError).getStatus()).toBe(503);
      expect(storeErrorCategory(error)).toBe('pooler_prepared_statement');
    }
    // Other statement errors stay what they are.
    const syntax = pgError('42601', 'syntax error at or near "SELEC"');
    expect(isPoolerPreparedStatementError(syntax)).toBe(false);
    expect(asStoreError(syntax)).toBe(syntax);
  });

  it('are logged with the setting that fixes them', () => {
    const logs = captureNestLogs();
    const log = new StoreErrorLog(0);
    log.report('lookupByTokenHash', duplicate);
    log.report('touchIfStale', pgError('57P01', 'terminating connection due to administrator command'));
    expect(logs.from('SessionStore', 'warn').map((e) => e.message)).toEqual([
      'statement lookupByTokenHash failed: Error: 42P05 prepared statement "nps_lookup" already exists ' +
        '(a transaction pooler (e.g. PgBouncer pool_mode=transaction) between the app and PostgreSQL? ' +
        'set the SessionModule option preparedStatements: false)',
      'statement touchIfStale failed: Error: 57P01 terminating connection due to administrator command',
    ]);
  });
});
