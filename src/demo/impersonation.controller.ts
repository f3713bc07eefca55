import { Body, Controller, HttpCode, NotFoundException, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { IsString, Length } from 'class-validator';
import {
  RealUserOnly,
  SessionAdminGuard,
  SessionService,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../session/index.js';
import { UsersService } from './users.service.js';

export class ImpersonateDto {
  /** Recorded in the audit row (`impersonation_started`); the module refuses an empty or longer one too. */
  @IsString()
  @Length(1, 500)
  reason: string;
}

/**
 * Support access: an admin (the admin API's rule, SessionAdminGuard: role 'admin', and never
 * from an impersonation session) acts as a user until POST /auth/stop-impersonating.
 */
@Controller('admin/users')
export class ImpersonationController {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UsersService,
  ) {}

  @Post(':userId/impersonate')
  @HttpCode(200)
  @UseGuards(SessionAdminGuard)
  @RealUserOnly()
  async impersonate(
    @Param('userId') userId: string,
    @Body() dto: ImpersonateDto,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    if (!this.users.findById(userId)) throw new NotFoundException('No such user');
    return this.sessions.impersonate(req, res, { userId, reason: dto.reason });
  }
}
