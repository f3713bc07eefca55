import { Module, type DynamicModule, type ExecutionContext, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionHealthIndicator } from '../session/health/index.js';
import { SessionModule, type SessionMetricsRegistry } from '../session/index.js';
import { AuthController } from './auth.controller.js';
import { CartController } from './cart.controller.js';
import type { DemoConfig } from './demo-config.js';
import { HealthController } from './health.controller.js';
import { ImpersonationController } from './impersonation.controller.js';
import { MeController } from './me.controller.js';
import { MetricsController } from './metrics.controller.js';
import { PageController } from './page.controller.js';
import { SecondFactorController } from './second-factor.controller.js';
import { TotpCodes } from './totp-codes.js';
import { PasswordAttempts } from './password-attempts.js';
import { SessionsController } from './sessions.controller.js';
import { SessionGateway } from './session.gateway.js';
import { UsersModule } from './users.module.js';
import { UsersService } from './users.service.js';

@Module({})
export class AppModule {
  static async register(config: DemoConfig): Promise<DynamicModule> {
    const rateLimit = await loginRateLimit(config.loginRateLimit);
    const metricsRegistry = await ownRegistry(config.session.metrics?.enabled === true);
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: config.databaseUrl,
          autoLoadEntities: true,
          synchronize: false, // tables come from migrations, run before the app starts
          // Bounded waits: a database that is away or stuck gives 503s, not hanging requests.
          extra: { max: 20, connectionTimeoutMillis: 10_000 },
          retryAttempts: 3,
          retryDelay: 500,
        }),
        ScheduleModule.forRoot(), // the session purge registers its job here (PURGE_CRON)
        // The admin API (/admin/...) is for users with the 'admin' role. Its routes are declared
        // here, statically; the role check comes from the factory, which can inject UsersService.
        SessionModule.forRootAsync({
          imports: [UsersModule],
          inject: [UsersService],
          useFactory: (users: UsersService) => ({
            ...config.session,
            ...(metricsRegistry ? { metrics: { ...config.session.metrics, registry: metricsRegistry } } : {}),
            admin: {
              enabled: true,
              authorize: (session) => users.findById(session.userId)?.roles.includes('admin') === true,
            },
          }),
          admin: { enabled: true },
        }),
        UsersModule,
        TerminusModule.forRoot({ logger: false }), // GET /health; its 503 body says what is down
        ...rateLimit.imports,
      ],
      controllers: [
        AuthController,
        CartController,
        MeController,
        SessionsController,
        ImpersonationController,
        HealthController,
        PageController,
        SecondFactorController,
        ...(metricsRegistry ? [MetricsController] : []),
      ],
      providers: [
        SessionGateway,
        SessionHealthIndicator,
        TotpCodes,
        {
          provide: PasswordAttempts,
          useValue: new PasswordAttempts(config.accountRateLimit, config.accountRateWindowMs),
        },
        ...rateLimit.providers,
      ],
    };
  }
}

/**
 * A prom-client registry of this app's own (SESSION_METRICS=on), rather than the process-wide
 * default one: several demo apps in one process (the tests) would otherwise collide on metric
 * names. Imported only when metrics are on, like the library does.
 */
async function ownRegistry(enabled: boolean): Promise<SessionMetricsRegistry | undefined> {
  if (!enabled) return undefined;
  const { Registry } = await import('prom-client');
  return new Registry();
}

/**
 * Password guessing is limited per client address with @nestjs/throttler: one budget of
 * LOGIN_RATE_LIMIT attempts a minute shared by every route that checks a password (login,
 * re-authentication, password change) or a second factor. The key leaves out the route (the default key
 * includes it, which gave each route a budget of its own: three times the guesses).
 * Per-account limits are PasswordAttempts'. Loaded lazily (and skipped when the limit is 0):
 * the package is CommonJS requiring ESM-only Nest 12, which Node runs but Jest's module
 * loader on Node 20 cannot.
 */
async function loginRateLimit(limitPerMinute: number): Promise<{ imports: DynamicModule[]; providers: Provider[] }> {
  if (limitPerMinute === 0) return { imports: [], providers: [] };
  const { ThrottlerModule, ThrottlerGuard } = await import('@nestjs/throttler');
  const checksPassword = [
    AuthController.prototype.login,
    AuthController.prototype.reauthenticate,
    MeController.prototype.changePassword,
    SecondFactorController.prototype.verify,
  ];
  const isPasswordRoute = (context: ExecutionContext) => checksPassword.includes(context.getHandler() as never);
  return {
    imports: [
      ThrottlerModule.forRoot({
        throttlers: [{ name: 'login', ttl: 60_000, limit: limitPerMinute }],
        skipIf: (context) => !isPasswordRoute(context),
        // The client address (the default tracker), without the route: one budget across the routes.
        generateKey: (_context, tracker, throttlerName) => `${throttlerName}:${tracker}`,
      }),
    ],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  };
}
