import type { ActiveSession } from './active-session.js';

/** What the module has settled about one request. */
export interface RequestState {
  /** SessionGuard.getClientIp()'s answer; the key is present once it has been asked (it may answer undefined). */
  clientIp?: string | undefined;
  /** The session attached to the request; null once looked at and there is none. */
  session?: ActiveSession | null;
}

// One WeakMap entry per request, not request properties: nothing another middleware writes onto
// the request (`req.session`, say) can change it, and nothing here is serialised or logged with
// the request. One entry for all of it, because each entry costs about a microsecond (and GC work)
// on every request.
const states = new WeakMap<object, RequestState>();

/** The request's state, if the module has settled anything about it. */
export function stateOf(request: object): RequestState | undefined {
  return states.get(request);
}

/** The request's state, created empty on first use. */
export function ownStateOf(request: object): RequestState {
  let state = states.get(request);
  if (!state) states.set(request, (state = {}));
  return state;
}
