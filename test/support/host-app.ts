import {
  Controller,
  Get,
  HttpCode,
  Inject,
  Post,
  Query,
  Req,
  Res,
  type DynamicModule,
  type INestApplication,
  type LoggerService,
  type ModuleMetadata,
  type Provider,
  type Type,
} from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test, type TestingModule } from '@nestjs/testing';
import { TypeOrmModule, type TypeOrmModuleOptions } from '@nestjs/typeorm';
import {
  CurrentSession,
  Public,
  SessionModule,
  SessionService,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';

/**
 * The routes every host app in the tests has: `POST /login` creates a session (for `userId`,
 * or for `?user=` when given), `GET /me` answers the session's user (guarded by default).
 */
export function loginController(userId: string): Type<unknown> {
  @Controller()
  class LoginController {
    constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

    @Public()
    @Post('login')
    @HttpCode(200)
    login(
      @Query('user') user: string | undefined,
      @Req() req: HttpRequestLike,
      @Res({ passthrough: true }) res: HttpResponseLike,
    ) {
      return this.sessions.create(req, res, { userId: user ?? userId });
    }

    @Get('me')
    me(@CurrentSession() session: ActiveSession) {
      return { userId: session.userId };
    }
  }
  return LoginController;
}

export interface HostAppOptions {
  /** The test database (TypeORM's default DataSource, entities loaded automatically). */
  url?: string;
  /** SessionModule.forRoot's argument, or the module itself (forRootAsync, a named DataSource). */
  session?: Parameters<typeof SessionModule.forRoot>[0] | DynamicModule;
  /** More TypeORM options for the default DataSource (e.g. `extra: { max: 2 }`). */
  typeorm?: Partial<TypeOrmModuleOptions>;
  /** Replaces the default DataSource (e.g. two named ones). */
  dataSources?: DynamicModule[];
  /** The user `POST /login` creates sessions for; false: no login controller. Default 'u-1'. */
  login?: string | false;
  adapter?: 'express' | 'fastify';
  imports?: ModuleMetadata['imports'];
  controllers?: Type<unknown>[];
  providers?: Provider[];
  logger?: LoggerService | false;
  /** Runs before init (app-level middleware, a WebSocket adapter). */
  configure?: (app: INestApplication) => void;
  /** Listen on a free loopback port instead of only init() (for real sockets). */
  listen?: boolean;
}

export interface HostApp {
  app: INestApplication;
  moduleRef: TestingModule;
  /** The HTTP server, for supertest. */
  server: ReturnType<INestApplication['getHttpServer']>;
}

/**
 * A Nest app as a user of the module writes it: TypeORM on the test database, SessionModule,
 * and the login controller, plus whatever the test adds. Close it with `app.close()`.
 */
export async function createHostApp(options: HostAppOptions): Promise<HostApp> {
  const {
    url,
    session = {},
    login = 'u-1',
    adapter = 'express',
    logger = false,
    dataSources = [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url,
        autoLoadEntities: true,
        retryAttempts: 0,
        ...options.typeorm,
      } as TypeOrmModuleOptions),
    ],
  } = options;
  const sessionModule = 'module' in session ? (session as DynamicModule) : SessionModule.forRoot(session);
  const moduleRef = await Test.createTestingModule({
    imports: [...dataSources, sessionModule, ...(options.imports ?? [])],
    controllers: [...(login === false ? [] : [loginController(login)]), ...(options.controllers ?? [])],
    providers: options.providers ?? [],
  }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger })
      : moduleRef.createNestApplication({ logger });
  options.configure?.(app);
  if (options.listen) await app.listen(0, '127.0.0.1');
  else await app.init();
  if (adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return { app, moduleRef, server: app.getHttpServer() };
}
