// Compile-time tests for SessionData declared by declaration merging, as an app writes it
// (checked by `npm run typecheck` in their own compilation: see tsconfig.json here).
import type { ActiveSession, SessionService } from 'nest-pg-session';

interface CartItem {
  sku: string;
  quantity: number;
}

declare module 'nest-pg-session' {
  interface SessionData {
    cart: CartItem[];
    oauthState: string;
  }
}

declare const sessions: SessionService;
declare const session: ActiveSession;
declare const req: { headers: Record<string, string> };
declare const res: object;

export async function declaredOnce(): Promise<void> {
  // Every ActiveSession now knows the keys, with no type argument.
  const state: string | undefined = session.data.oauthState;
  void state;
  // @ts-expect-error not a declared key
  void session.data.whatever;
  await sessions.patch(session, { cart: [{ sku: 'a', quantity: 2 }] });
  // @ts-expect-error a value of the wrong type
  await sessions.patch(session, { oauthState: 42 });
  // @ts-expect-error a key SessionData does not declare
  await sessions.patch(session, { whatever: true });
  await sessions.create(req, res, { userId: 'u-1', data: { oauthState: 's' } });
  // @ts-expect-error checked at login too
  await sessions.create(req, res, { userId: 'u-1', data: { cart: 'none' } });
  // A route may still narrow to its own type.
  const own = await sessions.patch<{ step: number }>(session, { step: 2 });
  void own.step;
}
