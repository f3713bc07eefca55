import { Injectable } from '@nestjs/common';
import { scryptSync, timingSafeEqual } from 'node:crypto';

export interface User {
  id: string;
  username: string;
}

/** Stands in for your user store: it keeps password hashes, never passwords. */
@Injectable()
export class UsersService {
  private readonly users = [
    { id: '1', username: 'alice', salt: 'c2FsdA', hash: scryptSync('alice-password', 'c2FsdA', 32) },
  ];

  async verify(username: string, password: string): Promise<User | undefined> {
    const user = this.users.find((candidate) => candidate.username === username);
    if (!user) return undefined;
    return timingSafeEqual(scryptSync(password, user.salt, 32), user.hash)
      ? { id: user.id, username: user.username }
      : undefined;
  }
}
