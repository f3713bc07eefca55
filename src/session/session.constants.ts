/** Injection tokens of the session module. */
export const SESSION_OPTIONS = Symbol('SESSION_OPTIONS'); // ResolvedSessionOptions
export const SESSION_TRANSPORT = Symbol('SESSION_TRANSPORT'); // SessionTransport
