/**
 * The shape of every session's data, for apps that declare it once (declaration merging, as
 * with express-session's `SessionData`):
 *
 * ```ts
 * declare module 'nest-pg-session' {
 *   interface SessionData {
 *     cart: { sku: string; quantity: number }[];
 *     locale: 'en' | 'fr';
 *   }
 * }
 * ```
 *
 * Then `ActiveSession`, `SessionService.patch()` and `create({ data })` check keys and value
 * types everywhere. Left empty, session data stays `Record<string, unknown>`. Data is stored
 * as JSON: declare JSON types (a `Date` comes back as a string).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by the app through declaration merging
export interface SessionData {}

/** `SessionData` once the app has declared keys in it; `Record<string, unknown>` until then. */
export type DefaultSessionData = keyof SessionData extends never ? Record<string, unknown> : SessionData;

/**
 * Session data as handlers read it: every key may be absent (a session starts with `{}`), and
 * nothing is writable, all the way down, because the object is frozen at run time too: only
 * `SessionService.patch()` persists a change.
 */
export type SessionDataView<TData extends object = DefaultSessionData> = Frozen<Partial<TData>>;

/** What `patch()` and `create({ data })` accept: some of the keys, each with its declared type. */
export type SessionDataPatch<TData extends object = DefaultSessionData> = Partial<TData>;

/** Readonly all the way down (arrays included), as `freezeData` makes it. */
export type Frozen<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: Frozen<T[K]> }
    : T;
