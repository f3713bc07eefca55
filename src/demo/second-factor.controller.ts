import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { Matches } from 'class-validator';
import { SecondFactorRoute, SessionService, type HttpRequestLike, type HttpResponseLike } from '../session/index.js';
import { PasswordAttempts } from './password-attempts.js';
import { TotpCodes } from './totp-codes.js';
import { UsersService } from './users.service.js';

export class SecondFactorDto {
  @Matches(/^\d{6}$/, { message: 'code must be 6 digits' })
  code: string;
}

/**
 * The second step of a login for users with TOTP (carol): POST /auth/login answered
 * `secondFactorRequired: true` with a pending session, which reaches only this route. Each
 * attempt takes one of the session's `secondFactor.maxAttempts` before the code is checked; the
 * last failure revokes the session (log in again).
 */
@Controller('auth')
export class SecondFactorController {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly codes: TotpCodes,
    private readonly attempts: PasswordAttempts,
  ) {}

  @SecondFactorRoute()
  @Post('second-factor')
  @HttpCode(200)
  async verify(
    @Body() dto: SecondFactorDto,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    const issued = await this.sessions.verifySecondFactor(req, res, async (session) => {
      const secret = this.users.totpSecretOf(session.userId);
      // A wrong code spends the account's password attempts too: guessing codes also closes the login.
      return this.attempts.check(this.users.accountName(session.userId), res, async () => {
        return secret !== undefined && (await this.codes.accept(session.userId, secret, dto.code));
      });
    });
    return {
      userId: issued.userId,
      sessionId: issued.sessionId,
      expiresAt: issued.expiresAt,
      ...(issued.token ? { token: issued.token } : {}),
      ...(issued.csrfToken ? { csrfToken: issued.csrfToken } : {}),
    };
  }
}
