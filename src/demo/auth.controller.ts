import { Body, Controller, ForbiddenException, HttpCode, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { IsBoolean, IsOptional, IsString, Length } from 'class-validator';
import {
  CurrentSession,
  Public,
  SessionService,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../session/index.js';
import { PasswordAttempts } from './password-attempts.js';
import { UsersService, type DemoUser } from './users.service.js';

export class LoginDto {
  @IsString()
  @Length(1, 64)
  username: string;

  @IsString()
  @Length(1, 256)
  password: string;

  /** The 'remember' lifetime (SESSION_REMEMBER_IDLE_TIMEOUT / _ABSOLUTE_TIMEOUT, default 7d / 30d) instead of the default one. */
  @IsOptional()
  @IsBoolean()
  rememberMe?: boolean;
}

export class ReauthenticateDto {
  @IsString()
  @Length(1, 256)
  password: string;
}

@Controller('auth')
export class AuthController {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly attempts: PasswordAttempts,
  ) {}

  // Rate-limited per client address (one budget with the other password routes, app.module.ts)
  // and per account (failed attempts by username, from any address: PasswordAttempts).
  @Public()
  @Post('login')
  @HttpCode(200)
  async login(@Body() dto: LoginDto, @Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    let user: DemoUser | undefined;
    await this.attempts.check(dto.username, res, async () => {
      user = await this.users.verify(dto.username, dto.password);
      return user !== undefined;
    });
    if (!user) throw new UnauthorizedException('Invalid username or password');
    // A user with TOTP gets a pending session: it reaches only POST /auth/second-factor.
    const pendingSecondFactor = this.users.totpSecretOf(user.id) !== undefined;
    // Sent with a guest's cookie, the guest's data (the cart) moves into this session.
    const created = await this.sessions.create(req, res, {
      userId: user.id,
      ...(dto.rememberMe === true ? { lifetime: 'remember' } : {}),
      ...(pendingSecondFactor ? { pendingSecondFactor } : {}),
    });
    if (created.secondFactorRequired)
      return {
        secondFactorRequired: true,
        expiresAt: created.expiresAt,
        ...(created.token ? { token: created.token } : {}),
        ...(created.csrfToken ? { csrfToken: created.csrfToken } : {}),
      };
    return {
      userId: created.userId,
      sessionId: created.sessionId,
      expiresAt: created.expiresAt,
      lifetime: created.lifetime,
      ...(created.token ? { token: created.token } : {}),
      ...(created.csrfToken ? { csrfToken: created.csrfToken } : {}),
    };
  }

  /** Step-up: proves the password again; the session becomes fresh and gets a new token. Rate-limited like login, on the same budgets. */
  @Post('reauthenticate')
  @HttpCode(200)
  async reauthenticate(
    @CurrentSession() session: ActiveSession,
    @Body() dto: ReauthenticateDto,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    const account = this.users.accountName(session.userId);
    if (!(await this.attempts.check(account, res, () => this.users.verifyById(session.userId, dto.password))))
      throw new ForbiddenException('Wrong password');
    const fresh = await this.sessions.reauthenticate(req, res);
    return { authenticatedAt: fresh.authenticatedAt, ...(fresh.csrfToken ? { csrfToken: fresh.csrfToken } : {}) };
  }

  /** Ends an impersonation (POST /admin/users/:userId/impersonate) and returns to the admin's own session. */
  @Post('stop-impersonating')
  @HttpCode(200)
  stopImpersonating(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.stopImpersonating(req, res);
  }

  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike): Promise<void> {
    await this.sessions.destroy(req, res);
  }
}
