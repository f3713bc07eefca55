import { Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { CurrentSession, Public, SessionService } from 'nest-pg-session';
import type { ActiveSession, HttpRequestLike, HttpResponseLike } from 'nest-pg-session';
import type { User } from './users.service.js';

@Controller('auth')
export class AuthController {
  constructor(private readonly sessions: SessionService) {}

  // @Public(): no session needed to log in. AuthGuard('local') runs the strategy (401 on a bad
  // password); Passport's own session support stays off, so it only sets req.user.
  @Public()
  @UseGuards(AuthGuard('local'))
  @Post('login')
  @HttpCode(200)
  login(@Req() req: HttpRequestLike & { user: User }, @Res({ passthrough: true }) res: HttpResponseLike) {
    // A fresh token; a token the request carried is revoked (session fixation).
    return this.sessions.create(req, res, { userId: req.user.id });
  }

  @Get('me')
  me(@CurrentSession() session: ActiveSession) {
    return { userId: session.userId };
  }

  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    await this.sessions.destroy(req, res);
  }
}
