/** Route metadata keys of the security decorators (their own file: guards and decorators both import them). */
export const SKIP_CSRF = 'nest-pg-session:skip-csrf';
export const FRESH_SESSION_MAX_AGE = 'nest-pg-session:fresh-session-max-age';
