import { BadRequestException, Body, Controller, Get, Patch, Req, Res } from '@nestjs/common';
import {
  CurrentSession,
  GuestSession,
  SessionService,
  type ActiveGuestSession,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../session/index.js';

type Cart = Record<string, unknown>;

const cartOf = (session: ActiveSession | ActiveGuestSession | undefined): Cart => {
  const cart = session?.data.cart;
  return typeof cart === 'object' && cart !== null && !Array.isArray(cart) ? (cart as Cart) : {};
};

/**
 * A cart that works before login: a visitor's lives in a guest session, started by the first
 * PATCH (never by a GET), and moves into the user's session at login. Logged-in users use their
 * own session's `cart`.
 */
@Controller('cart')
@GuestSession()
export class CartController {
  constructor(private readonly sessions: SessionService) {}

  /** The cart of the current guest or user; `{}` without a session. Creates nothing. */
  @Get()
  cart(@CurrentSession() session?: ActiveSession | ActiveGuestSession): Cart {
    return cartOf(session);
  }

  /**
   * Merges the body's keys into the cart. The first write of a visitor starts a guest session
   * (its cookie comes with the answer); the answer's `csrfToken` goes in `x-csrf-token` next time.
   */
  @Patch()
  async patch(
    @Body() body: unknown,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ): Promise<{ cart: Cart; csrfToken?: string }> {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new BadRequestException('the body must be a JSON object of cart items');
    // Read-merge-write of the one `cart` key: two tabs adding items at the same instant may lose one.
    const cart = { ...cartOf(this.sessions.current(req)), ...(body as Cart) };
    const data = await this.sessions.patchCurrent(req, res, { cart });
    const csrfToken = this.sessions.current(req)?.csrfToken;
    return { cart: data.cart as Cart, ...(csrfToken ? { csrfToken } : {}) };
  }
}
