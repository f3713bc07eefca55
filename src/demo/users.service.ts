import { Injectable } from '@nestjs/common';
import { randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';

export interface DemoUser {
  id: string;
  username: string;
  roles: string[];
}

interface StoredUser extends DemoUser {
  salt: Buffer;
  hash: Buffer;
  /** Base32 TOTP secret: this user logs in with a second factor. */
  totpSecret?: string;
}

/**
 * carol's TOTP secret: a DEMO secret, public in the README (add it to any authenticator app to
 * log in as carol). A real app stores one random secret per user, encrypted, and never logs it.
 */
export const DEMO_TOTP_SECRET = 'JBSWY3DPEHPK3PXP';

const KEY_LENGTH = 32;
const SCRYPT: ScryptOptions = { N: 16_384, r: 8, p: 1 };

function scryptAsync(password: BinaryLike, salt: BinaryLike): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, SCRYPT, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

const SEEDS: Array<[string, string, string, string[], string?]> = [
  ['u-alice', 'alice', 'alice-password', ['user']],
  ['u-bob', 'bob', 'bob-password', ['user']],
  ['u-admin', 'admin', 'admin-password', ['user', 'admin']],
  ['u-carol', 'carol', 'carol-password', ['user'], DEMO_TOTP_SECRET],
];

// Hashed once per process: every app instance (tests start hundreds) copies them instead of
// paying scrypt four times again; a password change replaces only that instance's copy.
let seededUsers: Promise<StoredUser[]> | undefined;
async function hashSeeds(): Promise<StoredUser[]> {
  const users: StoredUser[] = [];
  for (const [id, username, password, roles, totpSecret] of SEEDS) {
    const salt = randomBytes(16);
    users.push({ id, username, roles, salt, hash: await scryptAsync(password, salt), totpSecret });
  }
  return users;
}

/** The demo's user directory: four fixed users (carol with TOTP), passwords kept as scrypt hashes only. */
@Injectable()
export class UsersService {
  private readonly users = new Map<string, StoredUser>();
  private readonly ready: Promise<void>;
  private dummy: { salt: Buffer; hash: Buffer } | undefined;

  constructor() {
    this.ready = this.seed();
  }

  private async seed(): Promise<void> {
    for (const user of await (seededUsers ??= hashSeeds())) this.users.set(user.username, { ...user });
    const salt = randomBytes(16);
    this.dummy = { salt, hash: await scryptAsync(randomBytes(16), salt) };
  }

  /** The user when the password matches; unknown users cost the same scrypt, so timing tells nothing. */
  async verify(username: string, password: string): Promise<DemoUser | undefined> {
    await this.ready;
    const user = this.users.get(username);
    const target = user ?? this.dummy!;
    const candidate = await scryptAsync(password, target.salt);
    if (!user || !timingSafeEqual(candidate, target.hash)) return undefined;
    return { id: user.id, username: user.username, roles: user.roles };
  }

  /** Re-authentication of a signed-in user: the same constant-cost check, by user id. */
  async verifyById(id: string, password: string): Promise<boolean> {
    await this.ready;
    const user = [...this.users.values()].find((candidate) => candidate.id === id);
    return (await this.verify(user?.username ?? '', password)) !== undefined;
  }

  /** Replaces the password when `current` is right; false otherwise. */
  async changePassword(id: string, current: string, next: string): Promise<boolean> {
    if (!(await this.verifyById(id, current))) return false;
    const user = [...this.users.values()].find((candidate) => candidate.id === id)!;
    user.salt = randomBytes(16);
    user.hash = await scryptAsync(next, user.salt);
    return true;
  }

  /** The name the per-account password limit counts under: the username, so login and step-up share it. */
  accountName(id: string): string {
    return this.findById(id)?.username ?? id;
  }

  /** The user's TOTP secret, when they log in with a second factor. */
  totpSecretOf(id: string): string | undefined {
    return [...this.users.values()].find((candidate) => candidate.id === id)?.totpSecret;
  }

  findById(id: string): DemoUser | undefined {
    for (const user of this.users.values())
      if (user.id === id) return { id: user.id, username: user.username, roles: user.roles };
    return undefined;
  }
}
