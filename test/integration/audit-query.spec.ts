import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadRequestException, ValidationPipe } from '@nestjs/common';
import pg from 'pg';
import { AUDIT_EVENTS } from '../../src/session/audit/audit-event.js';
import { AuditQueryDto, AuditSummaryDto, type AuditQueryInput } from '../../src/session/audit/audit-query.dto.js';
import { SessionAuditStore } from '../../src/session/audit/audit.store.js';
import { SessionAuditService } from '../../src/session/audit/session-audit.service.js';
import { StoreUnavailableError } from '../../src/session/store/pg-errors.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

interface Seed {
  occurred_at: string;
  event: string;
  session_id: string | null;
  user_id: string | null;
  actor_id: string | null;
  ip: string | null;
}

/** Small deterministic PRNG, so the reference data is the same on every run. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const T0 = Date.parse('2025-03-01T00:00:00Z');
const SESSIONS = [
  '11111111-1111-4111-8111-111111111111',
  '22222222-2222-4222-8222-222222222222',
  '33333333-3333-4333-8333-333333333333',
];
const USERS = ['u-1', 'u-2', "o'brien; --"];
const ACTORS = [null, 'u-1', 'admin-1'];
const IPS = [null, '10.0.0.1', '2001:db8::1'];
const EVENTS = ['created', 'rotated', 'revoked', 'token_reuse_detected'] as const;

async function insert(db: TestDatabase, rows: Seed[]): Promise<string[]> {
  const { rows: inserted } = await db.pool.query(
    `
    INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, actor_id, ip, user_agent)
    SELECT occurred_at, event, session_id, user_id, actor_id, ip, 'seed' FROM jsonb_to_recordset($1::jsonb)
      AS x(occurred_at timestamptz, event text, session_id uuid, user_id text, actor_id text, ip text)
    RETURNING id::text AS id`,
    [JSON.stringify(rows)],
  );
  return inserted.map((r) => r.id);
}

const badRequest = async (promise: Promise<unknown>): Promise<string[]> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BadRequestException);
  const body = (error as BadRequestException).getResponse() as { statusCode: number; message: string[] };
  expect(body.statusCode).toBe(400);
  return body.message;
};

describe('SessionAuditService.query', () => {
  let db: TestDatabase;
  let audit: SessionAuditService;
  const seeded: Array<Seed & { id: string }> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    audit = new SessionAuditService(new SessionAuditStore(db.pool));
    const random = prng(42);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
    const rows: Seed[] = Array.from({ length: 400 }, () => ({
      // Whole minutes, so many rows share a timestamp and ties must be broken by id.
      occurred_at: new Date(T0 + Math.floor(random() * 120) * 60_000).toISOString(),
      event: pick(EVENTS),
      session_id: pick(SESSIONS),
      user_id: pick(USERS),
      actor_id: pick(ACTORS),
      ip: pick(IPS),
    }));
    const ids = await insert(db, rows);
    rows.forEach((row, i) => seeded.push({ ...row, id: ids[i] }));
  });
  afterAll(async () => db?.drop());

  /** What the answer must be: the seed filtered in JS, newest first, ties by id. */
  const reference = (f: AuditQueryInput) =>
    seeded
      .filter(
        (r) =>
          (f.userId === undefined || r.user_id === f.userId) &&
          (f.sessionId === undefined || r.session_id === f.sessionId) &&
          (f.actorId === undefined || r.actor_id === f.actorId) &&
          (f.events === undefined || f.events.includes(r.event as never)) &&
          (f.ip === undefined || r.ip === f.ip) &&
          (f.from === undefined || Date.parse(r.occurred_at) >= new Date(f.from).getTime()) &&
          (f.to === undefined || Date.parse(r.occurred_at) < new Date(f.to).getTime()),
      )
      .sort((a, b) => Date.parse(b.occurred_at) - Date.parse(a.occurred_at) || Number(b.id) - Number(a.id))
      .map((r) => r.id);

  const everyPage = async (filter: AuditQueryInput, limit: number): Promise<string[]> => {
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1_000; pages++) {
      const page = await audit.query({ ...filter, limit, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(limit);
      ids.push(...page.items.map((item) => item.id));
      if (!page.nextCursor) return ids;
      cursor = page.nextCursor;
    }
    throw new Error('pagination did not end');
  };

  const FILTERS: Array<[keyof AuditQueryInput, unknown]> = [
    ['userId', "o'brien; --"],
    ['sessionId', SESSIONS[1]],
    ['actorId', 'admin-1'],
    ['events', ['revoked', 'token_reuse_detected']],
    ['ip', '2001:db8::1'],
    ['from', new Date(T0 + 30 * 60_000).toISOString()],
    ['to', new Date(T0 + 90 * 60_000).toISOString()],
  ];

  it('answers all 128 combinations of the seven filters exactly as the reference does, newest first', async () => {
    let nonEmpty = 0;
    for (let mask = 0; mask < 1 << FILTERS.length; mask++) {
      const filter = Object.fromEntries(FILTERS.filter((_, i) => mask & (1 << i))) as AuditQueryInput;
      const page = await audit.query({ ...filter, limit: 500 });
      expect({ filter, ids: page.items.map((i) => i.id) }).toEqual({ filter, ids: reference(filter) });
      expect(page.nextCursor).toBeNull();
      if (page.items.length > 0) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(100); // the seed is dense enough that the comparison means something
  });

  it('pages through ties in occurred_at without skipping or repeating, for any page size', async () => {
    for (const limit of [1, 3, 7, 50]) {
      expect(await everyPage({}, limit)).toEqual(reference({}));
      expect(await everyPage({ userId: 'u-1', events: ['created', 'rotated'] }, limit)).toEqual(
        reference({ userId: 'u-1', events: ['created', 'rotated'] }),
      );
    }
  });

  it('returns whole rows: the session uuid, actor, ip, details, and the time as a Date', async () => {
    const [item] = (await audit.query({ sessionId: SESSIONS[0], limit: 1 })).items;
    const row = seeded.find((r) => r.id === item.id)!;
    expect(item).toEqual({
      id: row.id,
      occurredAt: new Date(row.occurred_at),
      event: row.event,
      sessionId: row.session_id,
      userId: row.user_id,
      actorId: row.actor_id,
      ip: row.ip,
      userAgent: 'seed',
      details: {},
    });
  });

  it('takes SQL metacharacters in ids as plain data: they match only themselves', async () => {
    const total = (await db.pool.query('SELECT count(*)::int AS n FROM session_audit_log')).rows[0].n;
    expect((await audit.query({ userId: "' OR '1'='1" })).items).toEqual([]);
    expect((await audit.query({ userId: "x'; DROP TABLE session_audit_log; --" })).items).toEqual([]);
    expect((await audit.query({ actorId: '%' })).items).toEqual([]);
    expect((await audit.query({ userId: "o'brien; --", limit: 500 })).items.map((i) => i.id)).toEqual(
      reference({ userId: "o'brien; --" }),
    );
    expect((await db.pool.query('SELECT count(*)::int AS n FROM session_audit_log')).rows[0].n).toBe(total);
  });

  it('stays stable while rows are inserted during paging: no duplicates, no skips, strictly descending', async () => {
    const user = 'u-concurrent';
    const base: Seed[] = Array.from({ length: 300 }, (_, i) => ({
      occurred_at: new Date(T0 - 86_400_000 + Math.floor(i / 3) * 1_000).toISOString(), // three rows per second
      event: 'created',
      session_id: null,
      user_id: user,
      actor_id: null,
      ip: null,
    }));
    const existing = await insert(db, base);
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        // New events (now) and late commits dated inside the range being paged.
        await insert(db, [
          {
            occurred_at: new Date().toISOString(),
            event: 'rotated',
            session_id: null,
            user_id: user,
            actor_id: null,
            ip: null,
          },
          {
            occurred_at: new Date(T0 - 86_400_000 + 50_000).toISOString(),
            event: 'rotated',
            session_id: null,
            user_id: user,
            actor_id: null,
            ip: null,
          },
        ]);
        written += 2;
      }
    })();
    const seen: Array<{ id: string; at: number }> = [];
    let cursor: string | undefined;
    try {
      do {
        const page = await audit.query({ userId: user, limit: 9, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((i) => ({ id: i.id, at: i.occurredAt.getTime() })));
        cursor = page.nextCursor ?? undefined;
        await new Promise((resolve) => setTimeout(resolve, 2));
      } while (cursor);
    } finally {
      writing = false;
      await writer;
    }
    expect(written).toBeGreaterThan(10);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of existing) expect(ids.filter((x) => x === id)).toHaveLength(1);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1], seen[i]];
      expect(a.at > b.at || (a.at === b.at && Number(a.id) > Number(b.id))).toBe(true);
    }
  });

  describe('cursors', () => {
    it('refuses an altered cursor, a cursor from other filters, and garbage, with 400', async () => {
      const page = await audit.query({ userId: 'u-1', limit: 5 });
      const cursor = page.nextCursor!;
      expect((await audit.query({ userId: 'u-1', limit: 5, cursor })).items).toHaveLength(5);
      // The limit may change between pages; the filters may not.
      expect((await audit.query({ userId: 'u-1', limit: 20, cursor })).items).toHaveLength(20);
      expect(await badRequest(audit.query({ userId: 'u-2', cursor }))).toEqual([
        expect.stringMatching(/does not belong to this query/),
      ]);
      expect(await badRequest(audit.query({ cursor }))).toEqual([expect.stringMatching(/does not belong/)]);

      const [us, id, check] = Buffer.from(cursor, 'base64url').toString().split('.');
      const forged = (text: string) => Buffer.from(text).toString('base64url');
      expect(
        await badRequest(audit.query({ userId: 'u-1', cursor: forged(`${us}.${Number(id) + 1}.${check}`) })),
      ).toEqual([expect.stringMatching(/does not belong/)]);
      expect(
        await badRequest(audit.query({ userId: 'u-1', cursor: forged(`${BigInt(us) - 1n}.${id}.${check}`) })),
      ).toEqual([expect.stringMatching(/does not belong/)]);
      for (const bad of [
        `${cursor}A`,
        cursor.slice(1),
        'not a cursor',
        '',
        forged(`${us}.${id}`),
        forged(`-1.${id}.${check}`),
        forged(`${us}.0x1.${check}`),
        forged(`${us} .${id}.${check}`),
        forged(`0${us}.${id}.${check}`),
        forged(`9007199254740993.${id}.${check}`),
        forged(`${us}.${id}.${check}'; DROP TABLE session_audit_log; --`),
        `${cursor}==`,
        cursor.replace(/.$/, '+'),
      ]) {
        const messages = await badRequest(audit.query({ userId: 'u-1', cursor: bad }));
        expect(messages.join(' ')).toMatch(/cursor/);
      }
    });
  });

  describe('rejects bad filters with 400 and the reason, before any SQL', () => {
    it.each<[string, unknown, RegExp]>([
      ['a session id with SQL in it', { sessionId: "' OR 1=1 --" }, /sessionId must be a session id/],
      [
        'an ip with SQL in it',
        { ip: "1.1.1.1'; DROP TABLE session_audit_log; --" },
        /ip must be an IPv4 or IPv6 address/,
      ],
      [
        'an event with SQL in it',
        { events: ["created'); DROP TABLE session_audit_log; --"] },
        /each value in events must be one of/,
      ],
      ['an unknown event', { events: 'created,bogus' }, /each value in events must be one of/],
      ['an empty event list', { events: [] }, /events should not be empty/],
      ['a user id with NUL', { userId: 'a\u0000b' }, /userId must be 1..255 characters without control characters/],
      ['a user id with a newline', { userId: 'a\nb' }, /userId must be 1..255/],
      ['an empty user id', { userId: '' }, /userId must be 1..255/],
      ['a 256-character actor id', { actorId: 'x'.repeat(256) }, /actorId must be 1..255/],
      ['a user id list', { userId: ['u-1', 'u-2'] }, /userId must be a string/],
      ['an operator object', { userId: { $ne: 'x' } }, /userId must be a string/],
      ['limit 0', { limit: 0 }, /limit must not be less than 1/],
      ['limit 501', { limit: 501 }, /limit must not be greater than 500/],
      ['limit -1', { limit: '-1' }, /limit must not be less than 1/],
      ['limit 1.5', { limit: '1.5' }, /limit must be an integer/],
      ['limit abc', { limit: 'abc' }, /limit must be an integer/],
      ['limit 1e9', { limit: '1e9' }, /limit must not be greater than 500/],
      ['an impossible date', { from: '2024-02-30' }, /from must be an ISO 8601 date/],
      ['a date word', { from: 'yesterday' }, /from must be an ISO 8601 date/],
      ['a date-time without a zone', { to: '2024-01-01T10:00:00' }, /to must be an ISO 8601 date/],
      ['a date with SQL in it', { from: "2024-01-01' OR '1'='1" }, /from must be an ISO 8601 date/],
      ['a number as a date', { from: 1_700_000_000_000 }, /from must be an ISO 8601 date/],
      ['an Invalid Date', { from: new Date(Number.NaN) }, /from must be an ISO 8601 date/],
      ['to before from', { from: '2025-01-02T00:00:00Z', to: '2025-01-01T00:00:00Z' }, /to must be after from/],
      ['to equal to from', { from: '2025-01-01T00:00:00Z', to: '2025-01-01T00:00:00Z' }, /to must be after from/],
      ['an unknown field', { user_id: 'u-1' }, /property user_id should not exist/],
      [
        'an unknown field next to good ones',
        { userId: 'u-1', orderBy: 'id; DROP TABLE x' },
        /property orderBy should not exist/,
      ],
      ['an overlong cursor', { cursor: 'A'.repeat(129) }, /cursor must be shorter than or equal to 128/],
    ])('%s', async (_, input, reason) => {
      const messages = await badRequest(audit.query(input as AuditQueryInput));
      expect(messages.join('\n')).toMatch(reason);
    });

    it.each([null, 'userId=u-1', ['u-1'], 42])('a filter that is not an object (%j)', async (input) => {
      expect(await badRequest(audit.query(input as never))).toEqual(['the filter must be an object']);
    });

    it('accepts what the docs promise: comma lists, repeated events, date-only, offsets, Date objects, numeric strings', async () => {
      const from = '2025-03-01';
      const to = '2025-03-01T01:00:00+00:00';
      const expected = reference({ events: ['created', 'revoked'], from, to }).slice(0, 10);
      for (const input of [
        { events: 'created,revoked', from, to, limit: '10' },
        { events: ['created', 'revoked', 'created'], from: new Date(from), to: new Date(to), limit: 10 },
        { events: ['created,revoked'], from: '2025-03-01T02:00:00+02:00', to: '2025-03-01T01:00:00.000Z', limit: 10 },
      ]) {
        expect((await audit.query(input as AuditQueryInput)).items.map((i) => i.id)).toEqual(expected);
      }
    });
  });

  it('reports an unreachable database as StoreUnavailableError (a 503), not a 500', async () => {
    const pool = new pg.Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 500,
    });
    try {
      const error = await new SessionAuditService(new SessionAuditStore(pool))
        .query({ userId: 'u-1' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).getStatus()).toBe(503);
    } finally {
      await pool.end();
    }
  });

  it('answers StoreUnavailableError (503) when no pooled connection frees up in time, instead of hanging', async () => {
    const tiny = db.newPool({ max: 1 }); // pg's default: wait forever for a client
    const held = await tiny.connect();
    try {
      const started = Date.now();
      const error = await new SessionAuditService(new SessionAuditStore(tiny, 300))
        .query({ userId: 'u-1' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      held.release();
      await tiny.end();
    }
  });

  it("works behind Nest's ValidationPipe (whitelist, forbidNonWhitelisted, transform)", async () => {
    const pipe = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });
    const dto = await pipe.transform(
      { events: 'created,revoked', limit: '10', from: '2025-03-01T00:00:00Z' },
      { type: 'query', metatype: AuditQueryDto },
    );
    expect(dto).toBeInstanceOf(AuditQueryDto);
    expect(dto).toMatchObject({ events: ['created', 'revoked'], limit: 10, from: new Date('2025-03-01T00:00:00Z') });
    expect((await audit.query(dto)).items.map((i) => i.id)).toEqual(
      reference({ events: ['created', 'revoked'], from: '2025-03-01T00:00:00Z' }).slice(0, 10),
    );
    await expect(
      pipe.transform({ limit: '0', foo: 'bar' }, { type: 'query', metatype: AuditQueryDto }),
    ).rejects.toBeInstanceOf(BadRequestException);
    await expect(
      pipe.transform({ from: '2025-01-01' }, { type: 'query', metatype: AuditSummaryDto }),
    ).rejects.toBeInstanceOf(BadRequestException);
  });
});

describe('SessionAuditService.summary', () => {
  let db: TestDatabase;
  let audit: SessionAuditService;
  const at = (iso: string, event: string): Seed => ({
    occurred_at: iso,
    event,
    session_id: null,
    user_id: 'u-sum',
    actor_id: null,
    ip: null,
  });

  beforeAll(async () => {
    db = await createTestDatabase();
    audit = new SessionAuditService(new SessionAuditStore(db.pool));
    await insert(db, [
      at('2025-05-01T10:00:00Z', 'created'),
      at('2025-05-01T10:00:59.999Z', 'created'),
      at('2025-05-01T10:01:00Z', 'created'),
      at('2025-05-01T10:59:00Z', 'revoked'),
      at('2025-05-01T11:15:00Z', 'token_reuse_detected'),
      at('2025-05-01T23:30:00Z', 'created'),
      at('2025-05-02T00:30:00Z', 'created'),
      at('2025-05-03T00:00:00Z', 'created'),
    ]);
  });
  afterAll(async () => db?.drop());

  it('counts per event per hour over [from, to), buckets cut in UTC', async () => {
    const summary = await audit.summary({ from: '2025-05-01T10:00:00Z', to: '2025-05-01T12:00:00Z', bucket: 'hour' });
    expect(summary).toEqual({
      from: new Date('2025-05-01T10:00:00Z'),
      to: new Date('2025-05-01T12:00:00Z'),
      bucket: 'hour',
      buckets: [
        { start: new Date('2025-05-01T10:00:00Z'), counts: { created: 3, revoked: 1 } },
        { start: new Date('2025-05-01T11:00:00Z'), counts: { token_reuse_detected: 1 } },
      ],
      totals: { created: 3, revoked: 1, token_reuse_detected: 1 },
    });
  });

  it('per minute and per day; the upper bound is exclusive', async () => {
    const minutes = await audit.summary({ from: '2025-05-01T10:00:00Z', to: '2025-05-01T10:01:00Z', bucket: 'minute' });
    expect(minutes.buckets).toEqual([{ start: new Date('2025-05-01T10:00:00Z'), counts: { created: 2 } }]);
    const days = await audit.summary({ from: '2025-05-01', to: '2025-05-03', bucket: 'day' });
    expect(days.buckets).toEqual([
      { start: new Date('2025-05-01T00:00:00Z'), counts: { created: 4, revoked: 1, token_reuse_detected: 1 } },
      { start: new Date('2025-05-02T00:00:00Z'), counts: { created: 1 } },
    ]);
  });

  it.each<[string, unknown, RegExp]>([
    [
      'a minute range over two days',
      { from: '2025-05-01', to: '2025-05-03T00:00:01Z', bucket: 'minute' },
      /at most 2 days with bucket 'minute'/,
    ],
    ['an hour range over 92 days', { from: '2025-01-01', to: '2025-06-01', bucket: 'hour' }, /at most 92 days/],
    ['a day range over two years', { from: '2020-01-01', to: '2025-01-01', bucket: 'day' }, /at most 731 days/],
    [
      'an unknown bucket',
      { from: '2025-05-01', to: '2025-05-02', bucket: 'week' },
      /bucket must be one of: minute, hour, day/,
    ],
    [
      'a bucket with SQL in it',
      { from: '2025-05-01', to: '2025-05-02', bucket: "hour', occurred_at) --" },
      /bucket must be one of/,
    ],
    ['no from', { to: '2025-05-02', bucket: 'hour' }, /from must be an ISO 8601 date/],
    ['no bucket', { from: '2025-05-01', to: '2025-05-02' }, /bucket must be one of/],
    ['to before from', { from: '2025-05-02', to: '2025-05-01', bucket: 'hour' }, /to must be after from/],
    [
      'an unknown field',
      { from: '2025-05-01', to: '2025-05-02', bucket: 'hour', event: 'created' },
      /property event should not exist/,
    ],
  ])('rejects %s with 400', async (_, input, reason) => {
    expect((await badRequest(audit.summary(input as never))).join('\n')).toMatch(reason);
  });

  it('knows every event name it may count', () => {
    expect(AUDIT_EVENTS).toEqual(
      expect.arrayContaining(['created', 'revoked', 'token_reuse_detected', 'purged', 'invalid_token']),
    );
  });
});
