import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ApolloDriverConfig } from '@nestjs/apollo';
import type { INestApplication } from '@nestjs/common';
import { Args, Context, Field, GraphQLModule, Mutation, ObjectType, Query, Resolver } from '@nestjs/graphql';
import request from 'supertest';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import {
  CsrfGuard,
  CurrentSession,
  GuestSession,
  Public,
  SessionGuard,
  SessionService,
  UnsupportedContextError,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import { ExpressApolloDriver } from '../support/apollo-express.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

@ObjectType()
class Me {
  @Field()
  userId: string;

  @Field()
  sessionId: string;
}

@Resolver(() => Me)
class MeResolver {
  constructor(private readonly sessions: SessionService) {}

  @Query(() => Me)
  me(@CurrentSession() session: ActiveSession): Me {
    return { userId: session.userId, sessionId: session.id };
  }

  @Public()
  @Query(() => String)
  hello(): string {
    return 'world';
  }

  @GuestSession()
  @Mutation(() => String)
  async addToCart(
    @Context() context: { req: HttpRequestLike & { res: HttpResponseLike } },
    @Args('item') item: string,
  ): Promise<string> {
    await this.sessions.patchCurrent(context.req, context.req.res, { cart: item });
    return item;
  }

  /** Takes guests but starts none: reading an empty cart writes nothing. */
  @GuestSession()
  @Mutation(() => String)
  peekCart(@CurrentSession() session?: ActiveSession): string {
    return String(session?.data.cart ?? 'empty');
  }

  @Public()
  @Mutation(() => String)
  async leaveNote(
    @Context() context: { req: HttpRequestLike & { res: HttpResponseLike } },
    @Args('note') note: string,
  ): Promise<string> {
    await this.sessions.patchCurrent(context.req, context.req.res, { note });
    return note;
  }

  @Mutation(() => String)
  async setNickname(@CurrentSession() session: ActiveSession, @Args('nickname') nickname: string): Promise<string> {
    await this.sessions.patch(session, { nickname });
    return nickname;
  }
}

const sidOf = (response: request.Response) =>
  (response.headers['set-cookie'] as unknown as string[] | undefined)
    ?.find((l) => l.startsWith('__Host-sid='))
    ?.split(';')[0]
    .slice('__Host-sid='.length);

describe('SessionGuard on GraphQL resolvers (Apollo, code first, Express)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let server: any;
  beforeAll(async () => {
    db = await createTestDatabase();
    ({ app, server } = await createHostApp({
      url: db.url,
      session: { rotationInterval: '1h', rotationGrace: '1m', guests: { enabled: true } },
      login: 'u-gql',
      imports: [
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ExpressApolloDriver,
          autoSchemaFile: true,
          graphiql: false,
        }),
      ],
      providers: [MeResolver],
    }));
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const gql = (query: string, headers: Record<string, string> = {}) =>
    request(server).post('/graphql').set(headers).send({ query });

  it('answers a guarded query with a valid session cookie, and refuses it without one', async () => {
    const login = await request(server).post('/login').expect(200);
    const token = sidOf(login)!;

    const ok = await gql('{ me { userId sessionId } }', { Cookie: `__Host-sid=${token}` }).expect(200);
    expect(ok.body).toEqual({ data: { me: { userId: 'u-gql', sessionId: login.body.sessionId } } });
    expect(ok.headers['cache-control']).toBe('no-store'); // written on the GraphQL context's response

    const refused = await gql('{ me { userId } }');
    expect(refused.body.data).toBeNull();
    expect(refused.body.errors[0]).toMatchObject({
      message: 'No session: log in first',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    const forged = await gql('{ me { userId } }', { Cookie: `__Host-sid=${'A'.repeat(43)}` });
    expect(forged.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');

    // @Public resolvers need nothing.
    await gql('{ hello }').expect(200, { data: { hello: 'world' } });
  });

  it('mutations need the CSRF token with a cookie session; queries do not', async () => {
    const token = sidOf(await request(server).post('/login').expect(200))!;
    const cookie = `__Host-sid=${token}`;
    const mutation = 'mutation { setNickname(nickname: "neo") }';

    const forged = await gql(mutation, { Cookie: cookie });
    expect(forged.body.errors[0]).toMatchObject({ message: 'CSRF token missing', extensions: { code: 'FORBIDDEN' } });
    const { rows: before } = await db.pool.query(`SELECT data FROM user_sessions WHERE data ? 'nickname'`);
    expect(before).toEqual([]);

    const done = await gql(mutation, { Cookie: cookie, 'x-csrf-token': csrfTokenFor(token) }).expect(200);
    expect(done.body).toEqual({ data: { setNickname: 'neo' } });
    const { rows } = await db.pool.query(
      `SELECT data->>'nickname' AS nickname FROM user_sessions WHERE data ? 'nickname'`,
    );
    expect(rows).toEqual([{ nickname: 'neo' }]);
  });

  it('a guest attached by a @GuestSession() resolver is no session for the guarded resolvers of the same request', async () => {
    const started = await gql('mutation { addToCart(item: "a") }', { 'Sec-Fetch-Site': 'same-origin' }).expect(200);
    expect(started.body).toEqual({ data: { addToCart: 'a' } });
    const guest = sidOf(started)!;
    // Mutation fields run one after another: the guest resolver attaches the guest first.
    const mixed = await gql('mutation { addToCart(item: "b") setNickname(nickname: "mallory") }', {
      Cookie: `__Host-sid=${guest}`,
      'x-csrf-token': csrfTokenFor(guest),
    }).expect(200);
    expect(mixed.body.data).toBeNull(); // setNickname is non-null: its refusal nulls the whole result
    expect(mixed.body.errors).toEqual([
      expect.objectContaining({ message: 'No session: log in first', path: ['setNickname'] }),
    ]);
    const { rows } = await db.pool.query(`SELECT user_id, data FROM user_sessions WHERE user_id IS NULL`);
    expect(rows).toEqual([{ user_id: null, data: { cart: 'b' } }]);
  });

  it('a @GuestSession() resolver lets no later resolver of the same request start a guest', async () => {
    const guests = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id IS NULL`)).rows[0].n;
    const before = await guests();
    const sameOrigin = { 'Sec-Fetch-Site': 'same-origin' };
    // Mutation fields run one after another: the guest resolver's guard has run before leaveNote's.
    const mixed = await gql('mutation { peekCart leaveNote(note: "planted") }', sameOrigin).expect(200);
    expect(mixed.body.data).toBeNull();
    expect(mixed.body.errors).toEqual([expect.objectContaining({ path: ['leaveNote'] })]);
    expect(sidOf(mixed)).toBeUndefined();
    expect(await guests()).toBe(before);
    const { rows } = await db.pool.query(`SELECT 1 FROM user_sessions WHERE data ? 'note'`);
    expect(rows).toEqual([]);
    // The guest route itself still starts one.
    const started = await gql('mutation { addToCart(item: "c") }', sameOrigin).expect(200);
    expect(sidOf(started)).toBeDefined();
    expect(await guests()).toBe(before + 1);
  });

  it('a rotation due during a GraphQL request sends the new cookie on that response', async () => {
    const token = sidOf(await request(server).post('/login').expect(200))!;
    // The rotation falls due on the database clock: moved there rather than waited for.
    await db.pool.query(
      `UPDATE user_sessions SET rotated_at = now() - interval '1 hour' WHERE token_hash = sha256(convert_to($1, 'UTF8'))`,
      [token],
    );
    const rotated = await gql('{ me { userId } }', { Cookie: `__Host-sid=${token}` }).expect(200);
    const next = sidOf(rotated);
    expect(next).toBeDefined();
    expect(next).not.toBe(token);
    await gql('{ me { userId } }', { Cookie: `__Host-sid=${next}` }).expect(200, { data: { me: { userId: 'u-gql' } } });
  });

  it('a GraphQL call without an HTTP request (a subscription): refused unless @Public(), which both guards let through', async () => {
    // What a subscription resolver's ExecutionContext looks like: type 'graphql', a context with no req.
    const contextFor = (method: 'hello' | 'me') => {
      const host = new ExecutionContextHost(
        [{}, {}, { connectionParams: {} }, { operation: { operation: 'subscription' } }],
        MeResolver,
        MeResolver.prototype[method],
      );
      host.setType('graphql');
      return host;
    };
    const sessionGuard = app.get(SessionGuard);
    const csrfGuard = app.get(CsrfGuard);
    expect(sessionGuard.canActivate(contextFor('hello'))).toBe(true); // public: answered at once, no promise
    expect(csrfGuard.canActivate(contextFor('hello'))).toBe(true);
    expect(() => sessionGuard.canActivate(contextFor('me'))).toThrow(UnsupportedContextError);
    expect(() => csrfGuard.canActivate(contextFor('me'))).toThrow(UnsupportedContextError);
  });
});
