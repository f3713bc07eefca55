import { BadRequestException, UnauthorizedException } from '@nestjs/common';

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
