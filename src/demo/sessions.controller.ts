import { Controller, Delete, Get, HttpCode, NotFoundException, Param, Post, Req } from '@nestjs/common';
import {
  CurrentSession,
  RequireFreshSession,
  SessionService,
  type ActiveSession,
  type HttpRequestLike,
} from '../session/index.js';

/**
 * "My devices": a user sees and revokes only their own sessions. Ending sessions needs a
 * recent authentication (ASVS 7.5.2), so a stolen idle session cannot lock the owner out.
 */
@Controller('sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionService) {}

  @Get()
  list(@CurrentSession() session: ActiveSession) {
    return this.sessions.list(session.userId, session);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireFreshSession()
  async revoke(
    @CurrentSession() session: ActiveSession,
    @Param('id') id: string,
    @Req() req: HttpRequestLike,
  ): Promise<void> {
    // Someone else's session and no session at all look the same: 404.
    const revoked = await this.sessions.revoke(id, {
      reason: 'user',
      actorId: session.userId,
      onlyUserId: session.userId,
      request: req,
    });
    if (!revoked) throw new NotFoundException('No such session');
  }

  @Post('revoke-others')
  @RequireFreshSession()
  async revokeOthers(@CurrentSession() session: ActiveSession, @Req() req: HttpRequestLike) {
    const revoked = await this.sessions.revokeAll(session.userId, {
      except: session,
      reason: 'revoke_others',
      actorId: session.userId,
      request: req,
    });
    return { revoked };
  }
}
