import type { ActiveSession } from './active-session.js';

/** What the module has settled about one request. */
export interface RequestState {
  /** SessionGuard.getClientIp()'s answer; the key is present once it has been asked (it may answer undefined). */
  clientIp?: string | undefined;
  /** The session attached to the request; null once looked at and there is none. */
  session?: ActiveSession | null;
}

// One property per request, under a symbol no other module holds: nothing another middleware
// writes onto the request (`req.session`, say) can reach it. Not enumerable, so it is not copied
// by `{ ...req }` or Object.assign, not serialised, and not shown when a request is logged.
// (A WeakMap entry would do the same at ~1 µs and extra GC work per request, on every route.)
const STATE = Symbol('nest-pg-session request state');

type WithState = { [STATE]?: RequestState };

/** The request's state, if the module has settled anything about it. */
export function stateOf(request: object): RequestState | undefined {
  return Object.hasOwn(request, STATE) ? (request as WithState)[STATE] : undefined;
}

/** The request's state, created empty on first use. */
export function ownStateOf(request: object): RequestState {
  const state = stateOf(request);
  if (state) return state;
  const created: RequestState = {};
  Object.defineProperty(request, STATE, { value: created, enumerable: false, writable: false, configurable: false });
  return created;
}
