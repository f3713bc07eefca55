import { Module } from '@nestjs/common';
import { UsersService } from './users.service.js';

/** The demo's user directory, as a module so SessionModule's options factory can inject it. */
@Module({ providers: [UsersService], exports: [UsersService] })
export class UsersModule {}
