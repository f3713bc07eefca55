import { Body, Controller, Get, Patch } from '@nestjs/common';
import { CurrentSession, SessionService, type ActiveSession } from '../session/index.js';

@Controller('me')
export class MeController {
  constructor(private readonly sessions: SessionService) {}

  @Get()
  me(@CurrentSession() session: ActiveSession) {
    return { userId: session.userId, sessionId: session.id, createdAt: session.createdAt, expiresAt: session.expiresAt };
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
}
