import { IsBoolean, IsOptional, IsString, Matches, registerDecorator, type ValidationArguments } from 'class-validator';
import type { ActiveSession } from '../active-session.js';
import type { HttpRequestLike } from '../transport/http.js';

/** Decides whether the caller's session may use the admin API. Only `true` lets it through. */
export type SessionAdminAuthorizer = (session: ActiveSession, request: HttpRequestLike) => boolean | Promise<boolean>;

/** The optional admin HTTP API (`admin` in SessionModule options). Off by default. */
export interface SessionAdminOptions {
  /** Mount the admin routes. Default false. */
  enabled?: boolean;
  /** Required when enabled: who is an admin (e.g. a role lookup). Called on every admin request. */
  authorize?: SessionAdminAuthorizer;
  /** Route prefix of the admin API. Default 'admin'. */
  path?: string;
}

export interface ResolvedAdminOptions {
  enabled: boolean;
  authorize?: SessionAdminAuthorizer;
  path: string;
}

export const DEFAULT_ADMIN_PATH = 'admin';

function IsFunctionWhenEnabled() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isFunctionWhenEnabled',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown, args?: ValidationArguments) =>
          typeof value === 'function' || (value === undefined && (args!.object as AdminOptionsSchema).enabled !== true),
        defaultMessage: () =>
          'must be a function (session, request) => boolean | Promise<boolean> when admin.enabled is true',
      },
    });
}

export class AdminOptionsSchema implements SessionAdminOptions {
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @IsFunctionWhenEnabled()
  authorize?: SessionAdminAuthorizer;

  // Plain path segments only: no route parameters or wildcards that would change what is matched.
  @IsOptional()
  @IsString()
  @Matches(/^\/?[A-Za-z0-9][A-Za-z0-9_.~-]*(\/[A-Za-z0-9][A-Za-z0-9_.~-]*)*$/, {
    message: "must be a path like 'admin' or 'internal/admin'",
  })
  path?: string;
}

export function resolveAdminOptions(admin: SessionAdminOptions | undefined): ResolvedAdminOptions {
  return {
    enabled: admin?.enabled === true,
    authorize: admin?.authorize,
    path: (admin?.path ?? DEFAULT_ADMIN_PATH).replace(/^\//, ''),
  };
}

/**
 * Routes are fixed when the module is built, before a forRootAsync factory runs. So `enabled`
 * and `path` come from where SessionModule is imported (`forRoot({ admin })`, or `admin`
 * beside `useFactory`); `authorize` may come from either, e.g. from the factory to use
 * injected services. Contradictions stop the app at start-up.
 */
export function mergeAdminOptions(
  mounted: SessionAdminOptions | undefined,
  fromOptions: SessionAdminOptions | undefined,
): { admin: SessionAdminOptions | undefined } | { error: string } {
  if (mounted === fromOptions || fromOptions === undefined) return { admin: mounted };
  if (fromOptions === null || typeof fromOptions !== 'object') return { admin: fromOptions }; // validation names it
  if (fromOptions.enabled === true && mounted?.enabled !== true) {
    return {
      error:
        'admin.enabled came from the options factory, but routes are built before it runs: ' +
        'pass admin: { enabled: true } to SessionModule.forRootAsync() beside useFactory',
    };
  }
  if (fromOptions.enabled === false && mounted?.enabled === true) {
    return { error: 'admin is enabled where SessionModule is imported but disabled by the options factory' };
  }
  if (fromOptions.path !== undefined && fromOptions.path !== (mounted?.path ?? DEFAULT_ADMIN_PATH)) {
    return {
      error: 'admin.path must be given where SessionModule is imported (beside useFactory), not by the factory',
    };
  }
  return { admin: { ...mounted, ...fromOptions, path: mounted?.path } };
}
