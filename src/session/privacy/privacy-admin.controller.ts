import {
  Controller,
  Delete,
  ForbiddenException,
  Get,
  Header,
  Param,
  Query,
  Req,
  UseGuards,
  type Type,
} from '@nestjs/common';
import type { ActiveSession } from '../active-session.js';
import { validateDto } from '../audit/audit-query.dto.js';
import { CurrentSession } from '../decorators/session.decorators.js';
import { SessionAdminGuard } from '../admin/session-admin.guard.js';
import type { HttpRequestLike } from '../transport/http.js';
import { EraseUserQueryDto } from './erase-user.dto.js';
import { SessionPrivacyService } from './session-privacy.service.js';

/**
 * A user's personal data in the admin API (mounted beside SessionAdminController, under the same
 * path and guard): export it, erase it. The admin's session user id is the erasure's actor, and
 * never its subject: self-erasure is refused here (a user's own account deletion calls the service).
 */
@UseGuards(SessionAdminGuard)
export class SessionPrivacyAdminController {
  constructor(private readonly privacy: SessionPrivacyService) {}

  @Get('users/:userId/personal-data')
  @Header('Cache-Control', 'no-store')
  exportPersonalData(@Param('userId') userId: string) {
    return this.privacy.exportUser(userId);
  }

  /** `?mode=anonymise|delete` (default anonymise) → the counts. */
  @Delete('users/:userId/personal-data')
  @Header('Cache-Control', 'no-store')
  erasePersonalData(
    @Param('userId') userId: string,
    @Query() query: EraseUserQueryDto,
    @CurrentSession() session: ActiveSession,
    @Req() request: HttpRequestLike,
  ) {
    const { mode } = validateDto(EraseUserQueryDto, query);
    // The admin behind an impersonation session (when a subclassed guard lets one in) is the actor.
    const actorId = session.impersonator ?? session.userId;
    // An admin erasing themselves would pseudonymise (or delete) their own trail of admin acts.
    if (userId === actorId || userId === session.userId)
      throw new ForbiddenException({
        statusCode: 403,
        error: 'Forbidden',
        reason: 'self_erasure',
        message: 'An admin may not erase their own personal data through the admin API: another admin must',
      });
    return this.privacy.eraseUser(userId, { actorId, mode, request });
  }
}

/** The controller mounted at `path` (see sessionAdminControllerAt). */
export function sessionPrivacyAdminControllerAt(path: string): Type<SessionPrivacyAdminController> {
  @Controller(path)
  class MountedSessionPrivacyAdminController extends SessionPrivacyAdminController {}
  Object.defineProperty(MountedSessionPrivacyAdminController, 'name', { value: SessionPrivacyAdminController.name });
  return MountedSessionPrivacyAdminController;
}
