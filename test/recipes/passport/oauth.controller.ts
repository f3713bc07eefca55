import { Controller, ForbiddenException, Get, HttpCode, Injectable, Post, Query, Req, Res } from '@nestjs/common';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CurrentSession, GuestSession, SessionService } from 'nest-pg-session';
import type { ActiveGuestSession, ActiveSession, HttpRequestLike, HttpResponseLike } from 'nest-pg-session';

/** What the flow keeps in the session between the redirect and the callback. */
export interface OAuthData {
  oauthState: string | null;
}

/** Before login a guest's session, when linking an account the user's; none at all is refused. */
type FlowSession = ActiveSession<OAuthData> | ActiveGuestSession<OAuthData> | undefined;

/** Your identity provider's client (openid-client, or a Passport OAuth strategy's verify step). */
@Injectable()
export abstract class IdentityProvider {
  abstract authorizeUrl(state: string): string;
  /** Exchanges the callback's code for the user it proves; undefined when the provider refuses it. */
  abstract exchange(code: string): Promise<{ id: string } | undefined>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

// @GuestSession(): both routes see a guest's session as well as a user's (needs guests.enabled).
@Controller('auth/oauth')
@GuestSession()
export class OAuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly provider: IdentityProvider,
  ) {}

  /**
   * Starts the flow: a random state, kept server-side, travels to the provider. An anonymous
   * visitor's first write starts a guest session (its cookie comes with this answer); a POST, so
   * the Origin / Fetch-Metadata checks refuse a cross-site start.
   */
  @Post('start')
  @HttpCode(200)
  async start(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    const state = randomBytes(32).toString('base64url');
    await this.sessions.patchCurrent<OAuthData>(req, res, { oauthState: state });
    return { redirectTo: this.provider.authorizeUrl(state) };
  }

  /**
   * The provider redirects back here (a top-level GET: a SameSite=Lax cookie comes along).
   * The state is used once, whatever the outcome; only a match leads to a login.
   */
  @Get('callback')
  async callback(
    @CurrentSession() session: FlowSession,
    @Query('code') code: unknown,
    @Query('state') state: unknown,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    // No session, no state to compare with; a read never starts a guest session, so nothing is stored.
    if (!session) throw new ForbiddenException('No OAuth flow was started in this browser');
    const expected = session.data.oauthState;
    // Spent before anything else: a wrong guess costs the flow, and null is what the login carries.
    await this.sessions.patch(session, { oauthState: null });
    // Compared as digests: equal lengths for timingSafeEqual, whatever the query holds.
    if (typeof expected !== 'string' || typeof state !== 'string' || !timingSafeEqual(digest(expected), digest(state)))
      throw new ForbiddenException('OAuth state does not match this session');
    const user = typeof code === 'string' ? await this.provider.exchange(code) : undefined;
    if (!user) throw new ForbiddenException('The identity provider refused the code');
    // A new session and token for the user: the guest's data moves into it and its token is
    // revoked (a user's session that carried the state is revoked too: fixation).
    return this.sessions.create<OAuthData>(req, res, { userId: user.id });
  }
}
