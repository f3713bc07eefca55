import { Body, Controller, HttpCode, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { IsString, Length } from 'class-validator';
import { Public, SessionService } from '../session/index.js';
import { UsersService } from './users.service.js';

export class LoginDto {
  @IsString() @Length(1, 64)
  username: string;

  @IsString() @Length(1, 256)
  password: string;
}

@Controller('auth')
export class AuthController {
  constructor(private readonly users: UsersService, private readonly sessions: SessionService) {}

  // Rate-limited per client address (app.module.ts).
  @Public() @Post('login') @HttpCode(200)
  async login(@Body() dto: LoginDto, @Req() req: any, @Res({ passthrough: true }) res: any) {
    const user = await this.users.verify(dto.username, dto.password);
    if (!user) throw new UnauthorizedException('Invalid username or password');
    const created = await this.sessions.create(req, res, { userId: user.id });
    return { userId: created.userId, sessionId: created.sessionId, expiresAt: created.expiresAt, ...(created.token ? { token: created.token } : {}) };
  }

  @Post('logout') @HttpCode(204)
  async logout(@Req() req: any, @Res({ passthrough: true }) res: any): Promise<void> {
    await this.sessions.destroy(req, res);
  }
}
