/** Route metadata key of @RequireFreshSession() (its own file: the guard and the decorator both import it). */
export const FRESH_SESSION_MAX_AGE = 'nest-pg-session:fresh-session-max-age';
