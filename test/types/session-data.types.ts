// Compile-time tests for typed session data, checked by `npm run typecheck` (never run).
// Each `@ts-expect-error` must meet an error: if the line below it compiled, tsc would fail
// with "Unused '@ts-expect-error' directive", so a protection that stops working fails the build.
import type { ActiveSession, CreateSessionInput, SessionService } from '../../src/session/index.js';

interface ShopData {
  cart: { sku: string; quantity: number }[];
  locale: 'en' | 'fr';
}

declare const sessions: SessionService;
declare const shop: ActiveSession<ShopData>;
declare const untyped: ActiveSession;
declare const req: { headers: Record<string, string> };
declare const res: object;

export async function typedThroughTheGeneric(): Promise<void> {
  // Reads: every key may be absent, values have their declared types.
  const locale: 'en' | 'fr' | undefined = shop.data.locale;
  const quantity: number | undefined = shop.data.cart?.[0]?.quantity;
  void locale;
  void quantity;
  // @ts-expect-error a key ShopData does not declare
  void shop.data.basket;
  // @ts-expect-error a key may be absent: not `string` but `'en' | 'fr' | undefined`
  const sure: 'en' | 'fr' = shop.data.locale;
  void sure;

  // Data is frozen at run time; the type says so, all the way down.
  // @ts-expect-error readonly key
  shop.data.locale = 'fr';
  // @ts-expect-error readonly array
  shop.data.cart?.push({ sku: 'a', quantity: 1 });
  // @ts-expect-error readonly nested object
  if (shop.data.cart?.[0]) shop.data.cart[0].quantity = 2;

  // patch() takes TData from the session.
  const merged = await sessions.patch(shop, { locale: 'fr', cart: [{ sku: 'a', quantity: 1 }] });
  const after: 'en' | 'fr' | undefined = merged.locale;
  void after;
  // @ts-expect-error a key ShopData does not declare
  await sessions.patch(shop, { basket: [] });
  // @ts-expect-error a value of the wrong type
  await sessions.patch(shop, { locale: 'de' });
  // @ts-expect-error a nested value of the wrong type
  await sessions.patch(shop, { cart: [{ sku: 'a', quantity: '1' }] });
  // @ts-expect-error session data is a JSON object, not an array
  await sessions.patch(shop, []);

  // ...or from an explicit type argument, for a session typed with the default.
  await sessions.patch<ShopData>(untyped, { locale: 'en' });
  // @ts-expect-error checked against the explicit type argument
  await sessions.patch<ShopData>(untyped, { locale: 'de' });

  // create({ data }) takes the same patch type.
  await sessions.create<ShopData>(req, res, { userId: 'u-1', data: { locale: 'en' } });
  // @ts-expect-error a value of the wrong type in the first data
  await sessions.create<ShopData>(req, res, { userId: 'u-1', data: { locale: 1 } });
  const input: CreateSessionInput<ShopData> = { userId: 'u-1', data: { cart: [] } };
  await sessions.create<ShopData>(req, res, input);

  // current() types its answer the same way.
  const current = sessions.current<ShopData>(req);
  // @ts-expect-error not a ShopData key
  void current?.data.basket;
}

export async function permissiveByDefault(): Promise<void> {
  // Without a declared SessionData, data is Record<string, unknown>: code written before typed
  // data compiles unchanged.
  const anything: unknown = untyped.data.whatever;
  const record: Readonly<Record<string, unknown>> = untyped.data;
  void anything;
  void record;
  const body: Record<string, unknown> = { cart: [1, 2], n: 1 };
  const merged: Record<string, unknown> = await sessions.patch(untyped, body);
  void merged;
  await sessions.create(req, res, { userId: 'u-1', data: body });
  // Still frozen:
  // @ts-expect-error readonly key
  untyped.data.whatever = 1;
  // A typed session is still an ActiveSession (a function taking any session accepts it).
  const plain: ActiveSession<object> = shop;
  void plain;
  // ...and an untyped one may be annotated with the app's type: TData is the app's word on
  // what it stored, as for any JSON it reads back.
  const typed: ActiveSession<ShopData> = untyped;
  void typed;
}
