import { SetMetadata } from '@nestjs/common';

/** Route metadata key of @SkipCsrf(), read by the guards' route flags. */
export const SKIP_CSRF = 'nest-pg-session:skip-csrf';

/**
 * The route takes unsafe requests without the CSRF checks (no token, no Origin check): only
 * for endpoints no browser session should reach, e.g. a webhook called server to server.
 */
export const SkipCsrf = () => SetMetadata(SKIP_CSRF, true);
