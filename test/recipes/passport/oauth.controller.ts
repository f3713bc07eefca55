import { Controller, ForbiddenException, Get, HttpCode, Injectable, Post, Query, Req, Res } from '@nestjs/common';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CurrentSession, SessionService } from 'nest-pg-session';
import type { ActiveSession, HttpRequestLike, HttpResponseLike } from 'nest-pg-session';

/** What the flow keeps in the session between the redirect and the callback. */
export interface OAuthData {
  oauthState: string | null;
}

/** Your identity provider's client (openid-client, or a Passport OAuth strategy's verify step). */
@Injectable()
export abstract class IdentityProvider {
  abstract authorizeUrl(state: string): string;
  /** Exchanges the callback's code for the user it proves; undefined when the provider refuses it. */
  abstract exchange(code: string): Promise<{ id: string } | undefined>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

@Controller('auth/oauth')
export class OAuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly provider: IdentityProvider,
  ) {}

  /** Starts the flow: a random state, kept server-side in the session, travels to the provider. */
  @Post('start')
  @HttpCode(200)
  async start(@CurrentSession() session: ActiveSession<OAuthData>) {
    const state = randomBytes(32).toString('base64url');
    await this.sessions.patch(session, { oauthState: state });
    return { redirectTo: this.provider.authorizeUrl(state) };
  }

  /**
   * The provider redirects back here (a top-level GET: a SameSite=Lax cookie comes along).
   * The state is used once, whatever the outcome; only a match leads to a login.
   */
  @Get('callback')
  async callback(
    @CurrentSession() session: ActiveSession<OAuthData>,
    @Query('code') code: unknown,
    @Query('state') state: unknown,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    const expected = session.data.oauthState;
    await this.sessions.patch(session, { oauthState: null });
    // Compared as digests: equal lengths for timingSafeEqual, whatever the query holds.
    if (typeof expected !== 'string' || typeof state !== 'string' || !timingSafeEqual(digest(expected), digest(state)))
      throw new ForbiddenException('OAuth state does not match this session');
    const user = typeof code === 'string' ? await this.provider.exchange(code) : undefined;
    if (!user) throw new ForbiddenException('The identity provider refused the code');
    // A new session and token: the one that carried the state is revoked (fixation).
    return this.sessions.create(req, res, { userId: user.id });
  }
}
