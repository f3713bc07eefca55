import { Injectable, UnauthorizedException } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-local';
import { UsersService, type User } from './users.service.js';

/** Checks the password, and nothing else: the session is SessionService's job. */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy) {
  constructor(private readonly users: UsersService) {
    super({ usernameField: 'username', passwordField: 'password' });
  }

  async validate(username: string, password: string): Promise<User> {
    const user = await this.users.verify(username, password);
    if (!user) throw new UnauthorizedException('Invalid username or password');
    return user;
  }
}
