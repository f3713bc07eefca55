import {
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  NotFoundException,
  Param,
  Query,
  Req,
  UseGuards,
  type Type,
} from '@nestjs/common';
import type { ActiveSession } from '../active-session.js';
import { CurrentSession } from '../decorators/session.decorators.js';
import type { HttpRequestLike } from '../transport/http.js';
import { AuditQueryDto, AuditSummaryDto } from '../audit/audit-query.dto.js';
import { SessionAdminGuard } from './session-admin.guard.js';
import { SessionAdminService } from './session-admin.service.js';
import { SessionAuditService } from '../audit/session-audit.service.js';

/**
 * The admin HTTP API, mounted under `admin.path` only when `admin.enabled` (see
 * sessionAdminControllerAt). Every route needs a session that `admin.authorize` accepts.
 */
@UseGuards(SessionAdminGuard)
export class SessionAdminController {
  constructor(
    private readonly audit: SessionAuditService,
    private readonly admin: SessionAdminService,
  ) {}

  /** `?userId=&sessionId=&actorId=&events=a,b&ip=&from=&to=&limit=&cursor=` → `{ items, nextCursor }`. */
  @Get('sessions/audit')
  @Header('Cache-Control', 'no-store')
  queryAudit(@Query() query: AuditQueryDto) {
    return this.audit.query(query);
  }

  /** `?from=&to=&bucket=minute|hour|day` → counts per event per bucket. */
  @Get('sessions/audit/summary')
  @Header('Cache-Control', 'no-store')
  summarizeAudit(@Query() query: AuditSummaryDto) {
    return this.audit.summary(query);
  }

  @Get('users/:userId/sessions')
  @Header('Cache-Control', 'no-store')
  listUserSessions(@Param('userId') userId: string) {
    return this.admin.listUserSessions(userId);
  }

  @Delete('sessions/:id')
  @HttpCode(204)
  async revokeSession(
    @Param('id') id: string,
    @CurrentSession() session: ActiveSession,
    @Req() request: HttpRequestLike,
  ): Promise<void> {
    const revoked = await this.admin.revokeSession(id, { actorId: session.userId, request });
    if (!revoked) throw new NotFoundException('No live session with this id');
  }

  @Delete('users/:userId/sessions')
  @Header('Cache-Control', 'no-store')
  async revokeUserSessions(
    @Param('userId') userId: string,
    @CurrentSession() session: ActiveSession,
    @Req() request: HttpRequestLike,
  ) {
    return { revoked: await this.admin.revokeAllUserSessions(userId, { actorId: session.userId, request }) };
  }
}

/**
 * The controller mounted at `path`. Controller paths are static metadata, so each mount is
 * a subclass carrying its own @Controller(path); routes, guards and injection are inherited.
 */
export function sessionAdminControllerAt(path: string): Type<SessionAdminController> {
  @Controller(path)
  class MountedSessionAdminController extends SessionAdminController {}
  Object.defineProperty(MountedSessionAdminController, 'name', { value: SessionAdminController.name });
  return MountedSessionAdminController;
}
