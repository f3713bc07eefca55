import { Module, type DynamicModule } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionModule } from '../session/index.js';
import { AuthController } from './auth.controller.js';
import type { DemoConfig } from './demo-config.js';
import { HealthController } from './health.controller.js';
import { MeController } from './me.controller.js';
import { SessionsController } from './sessions.controller.js';
import { UsersService } from './users.service.js';

@Module({})
export class AppModule {
  static register(config: DemoConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: config.databaseUrl,
          autoLoadEntities: true,
          synchronize: false, // tables come from migrations, run before the app starts
          // Fail fast when the database is away, so requests get a 503 instead of hanging.
          extra: { max: 20, connectionTimeoutMillis: 2_000 },
          retryAttempts: 3,
          retryDelay: 500,
        }),
        ThrottlerModule.forRoot([{ ttl: 60_000, limit: config.loginRateLimit }]),
        SessionModule.forRoot(config.session),
      ],
      controllers: [AuthController, MeController, SessionsController, HealthController],
      providers: [UsersService],
    };
  }
}
