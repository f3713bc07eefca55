import type { ActiveSession } from '../active-session.js';
import * as is from '../option-schema.js';
import type { HttpRequestLike } from '../transport/http.js';

/** Decides whether the caller's session may use the admin API. Only `true` lets it through. */
export type SessionAdminAuthorizer = (session: ActiveSession, request: HttpRequestLike) => boolean | Promise<boolean>;

/** The optional admin HTTP API (`admin` in SessionModule options). Off by default. */
export class SessionAdminOptions {
  /** Mount the admin routes. */
  @is.Bool() enabled?: boolean;
  /** Required when enabled: who is an admin (e.g. a role lookup). Called on every admin request. */
  @is.Check((v) => typeof v === 'function', 'must be a function (session, request) => boolean | Promise<boolean>')
  authorize?: SessionAdminAuthorizer;
  /** Route prefix of the admin API: plain path segments, no route parameters or wildcards. */
  @is.Text(
    /^\/?[A-Za-z0-9][A-Za-z0-9_.~-]*(\/[A-Za-z0-9][A-Za-z0-9_.~-]*)*$/,
    "must be a path like 'admin' or 'internal/admin'",
  )
  path?: string;
}
