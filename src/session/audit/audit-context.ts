import { sessionOf } from '../active-session.js';
import { clientIp, headerValue, type HttpRequestLike } from '../transport/http.js';
import { boundText, MAX_IP_LENGTH, MAX_USER_AGENT_LENGTH, type AuditContext } from './audit-event.js';

/**
 * Who and where, for the audit rows a request causes. While a request runs in an impersonation
 * session, the admin behind it is the actor of everything it does, whatever `actorId` says.
 */
export function auditContext(request: HttpRequestLike, actorId?: string): AuditContext {
  return {
    actorId: sessionOf(request)?.impersonator ?? actorId ?? null,
    ip: boundText(clientIp(request), MAX_IP_LENGTH),
    userAgent: boundText(headerValue(request, 'user-agent'), MAX_USER_AGENT_LENGTH),
  };
}
