import { Body, Controller, ForbiddenException, Get, HttpCode, Patch, Post, Req, Res } from '@nestjs/common';
import { IsString, Length } from 'class-validator';
import {
  CurrentSession,
  RealUserOnly,
  RequireFreshSession,
  SessionService,
  type ActiveSession,
  type HttpRequestLike,
} from '../session/index.js';
import { PasswordAttempts } from './password-attempts.js';
import { UsersService } from './users.service.js';

export class ChangePasswordDto {
  @IsString()
  @Length(1, 256)
  currentPassword: string;

  @IsString()
  @Length(8, 256)
  newPassword: string;
}

@Controller('me')
export class MeController {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly attempts: PasswordAttempts,
  ) {}

  @Get()
  me(@CurrentSession() session: ActiveSession) {
    return {
      userId: session.userId,
      sessionId: session.id,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
      ...(session.impersonator ? { impersonator: session.impersonator } : {}),
      ...(session.csrfToken ? { csrfToken: session.csrfToken } : {}),
    };
  }

  @Get('data')
  data(@CurrentSession() session: ActiveSession) {
    return session.data;
  }

  /** Merges the body's keys into the session data; concurrent patches of other keys are kept. */
  @Patch('data')
  patch(@CurrentSession() session: ActiveSession, @Body() body: Record<string, unknown>) {
    return this.sessions.patch(session, body);
  }

  /**
   * Needs a recent authentication (SESSION_FRESH_AGE, default 5m; else 401 reauth_required:
   * POST /auth/reauthenticate first) and the current password; every other session of the
   * user ends, this one stays. A wrong current password counts against the same budgets as login.
   * Never while impersonating.
   */
  @Post('password')
  @HttpCode(200)
  @RequireFreshSession()
  @RealUserOnly() // lowest, so it runs first: an impersonation gets 403, not a step-up prompt
  async changePassword(
    @CurrentSession() session: ActiveSession,
    @Body() dto: ChangePasswordDto,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: unknown,
  ) {
    const account = this.users.accountName(session.userId);
    const changed = await this.attempts.check(account, res, () =>
      this.users.changePassword(session.userId, dto.currentPassword, dto.newPassword),
    );
    if (!changed) {
      throw new ForbiddenException('Current password is wrong');
    }
    const revoked = await this.sessions.revokeAll(session.userId, {
      except: session,
      reason: 'password_change',
      actorId: session.userId,
      request: req,
    });
    return { revokedOtherSessions: revoked };
  }
}
