import type { ActiveSession } from './active-session.js';

/** What the module has settled about one request. */
export interface RequestState {
  /** SessionGuard.getClientIp()'s answer; the key is present once it has been asked (it may answer undefined). */
  clientIp?: string | undefined;
  /** The session attached to the request; null once looked at and there is none. */
  session?: ActiveSession | null;
}

/** A constructor that returns the object it is given, so a subclass's fields are installed on that object. */
class Stamp {
  constructor(target: object) {
    return target;
  }
}

/**
 * The state lives in a private field stamped onto the request (`new RequestStateSlot(request)`
 * runs the field initialiser on the request itself). Only this class can read or write it, as
 * with a WeakMap: nothing another middleware writes onto the request (`req.session`, say)
 * reaches it, and it is not copied with the request (`{ ...req }`), inherited, serialised or
 * shown when a request is logged. A WeakMap entry cost ~1 µs and GC work per request, on every
 * route; the field ~50 ns.
 */
class RequestStateSlot extends Stamp {
  readonly #state: RequestState = {};

  static stateOf(request: object): RequestState | undefined {
    return #state in request ? (request as RequestStateSlot).#state : undefined;
  }

  static create(request: object): RequestState {
    return new RequestStateSlot(request).#state;
  }
}

/** The request's state, if the module has settled anything about it. */
export function stateOf(request: object): RequestState | undefined {
  return RequestStateSlot.stateOf(request);
}

/** The request's state, created empty on first use. */
export function ownStateOf(request: object): RequestState {
  return RequestStateSlot.stateOf(request) ?? RequestStateSlot.create(request);
}
