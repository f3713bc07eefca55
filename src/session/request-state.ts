/** What the module has settled about one request's client (the session is kept in active-session.ts). */
export interface RequestState {
  /** SessionGuard.getClientIp()'s answer; the key is present once it has been asked (it may answer undefined). */
  clientIp?: string | undefined;
  /** The route is marked @GuestSession(): SessionService.patchCurrent() may start a guest session. */
  guestRoute?: true;
}

/**
 * Kept beside the request, not on it: nothing another middleware writes onto the request
 * reaches it, and it is not copied, inherited, serialised or logged with the request.
 */
const states = new WeakMap<object, RequestState>();

/** The request's state, if the module has settled anything about it. */
export function stateOf(request: object): RequestState | undefined {
  return states.get(request);
}

/** The request's state, created empty on first use. */
export function ownStateOf(request: object): RequestState {
  let state = states.get(request);
  if (state === undefined) states.set(request, (state = {}));
  return state;
}

/**
 * Set by SessionGuard for every handler it checks: true on a @GuestSession() route. Cleared
 * elsewhere, so it never carries over to a later resolver of the same GraphQL request.
 */
export function allowGuestCreation(request: object, allowed = true): void {
  if (allowed) ownStateOf(request).guestRoute = true;
  else if (states.get(request)?.guestRoute) delete states.get(request)!.guestRoute;
}

/** Whether SessionGuard found the request's route marked @GuestSession(). */
export function mayCreateGuest(request: object): boolean {
  return stateOf(request)?.guestRoute === true;
}
