import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuthController } from './auth.controller.js';
import { LocalStrategy } from './local.strategy.js';
import { UsersService } from './users.service.js';

@Module({
  // session: false is @nestjs/passport's default; said here so nobody turns it on by accident.
  imports: [PassportModule.register({ session: false })],
  controllers: [AuthController],
  providers: [LocalStrategy, UsersService],
})
export class AuthModule {}
