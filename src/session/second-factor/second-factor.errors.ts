import { BadRequestException, ConflictException, UnauthorizedException } from '@nestjs/common';

/** 401 'second_factor_required', the body of the module's other 401s: a pending session outside a verification route. */
export function secondFactorRequired(): UnauthorizedException {
  return new UnauthorizedException({
    statusCode: 401,
    error: 'Unauthorized',
    message: 'This session waits for its second factor: complete the login first',
    reason: 'second_factor_required',
  });
}

/** 400 'not_pending': completing or failing a second factor on a session that waits for none. */
export function notPending(method: string): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    reason: 'second_factor_not_pending',
    message: `SessionService.${method}: this session is not waiting for a second factor`,
  });
}

/** 401 'missing': a second-factor call on a request without a session (e.g. a route that is not a @SecondFactorRoute()). */
export function noPendingSession(method: string): UnauthorizedException {
  return new UnauthorizedException({
    statusCode: 401,
    error: 'Unauthorized',
    reason: 'missing',
    message: `SessionService.${method}: no session on this request: log in first (it needs the pending session, on a @SecondFactorRoute())`,
  });
}

/** 401 after a wrong code; `attemptsLeft` 0: the session was revoked (log in again). */
export function secondFactorFailed(attemptsLeft: number): UnauthorizedException {
  return new UnauthorizedException({
    statusCode: 401,
    error: 'Unauthorized',
    reason: attemptsLeft > 0 ? 'second_factor_failed' : 'revoked',
    message:
      attemptsLeft > 0
        ? `The second factor was not accepted: ${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left`
        : 'Too many failed second-factor attempts: the session was revoked, log in again',
    attemptsLeft,
  });
}

/** 401 when the pending session ended for another cause (expired, completed or revoked concurrently): log in again. */
export function pendingSessionGone(): UnauthorizedException {
  return new UnauthorizedException({
    statusCode: 401,
    error: 'Unauthorized',
    reason: 'revoked',
    message:
      'This login is no longer waiting for a second factor (it expired, ended or was completed elsewhere): log in again',
  });
}

/** 401 'second_factor_locked': the user's failures across all pending sessions fill the per-user limit. */
export function secondFactorLocked(retryAfterMs: number): UnauthorizedException {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new UnauthorizedException({
    statusCode: 401,
    error: 'Unauthorized',
    reason: 'second_factor_locked',
    message: `Too many failed second-factor attempts on this account: log in again in ${retryAfterSeconds} s`,
    retryAfterSeconds,
  });
}

/** 409 'session_limit' (sessionLimit with policy 'reject'), for a login and for a second factor's completion alike. */
export function sessionLimitReached(limit: number): ConflictException {
  return new ConflictException({
    statusCode: 409,
    error: 'Conflict',
    reason: 'session_limit',
    message: `This account already has ${limit} active sessions, the most allowed. Log out on another device (or revoke a session there) and try again.`,
  });
}
