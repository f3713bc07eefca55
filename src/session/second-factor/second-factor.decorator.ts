import { SetMetadata } from '@nestjs/common';

export const SECOND_FACTOR_ROUTE = 'nest-pg-session:second-factor-route';

/**
 * The route verifies a second factor: a session waiting for one (`create(..., {
 * pendingSecondFactor: true })`) passes here, and only here (`@CurrentSession()` shows its
 * `userId` and `secondFactorPending: true`); a full session passes as on any guarded route.
 * Everywhere else a pending session gets 401 'second_factor_required'. Call
 * `SessionService.verifySecondFactor()` (or `completeSecondFactor()`/`failSecondFactor()`) here.
 */
export const SecondFactorRoute = () => SetMetadata(SECOND_FACTOR_ROUTE, true);
