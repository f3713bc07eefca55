import { BadRequestException, Injectable } from '@nestjs/common';
import { SessionService } from '../session.service.js';
import type { SessionSummary } from '../store/session-row.js';
import { isSessionId } from '../store/session.store.js';
import type { HttpRequestLike } from '../transport/http.js';
import { ID_PATTERN } from '../audit/audit-query.dto.js';

/** Who is acting: the admin's user id, and their request for the audit row's ip and user agent. */
export interface AdminActor {
  actorId: string;
  request?: HttpRequestLike;
}

/**
 * Admin control over anyone's sessions. Every change is audited with the admin as actor and
 * reason 'admin' (in the same statement as the change, like every session event).
 */
@Injectable()
export class SessionAdminService {
  constructor(private readonly sessions: SessionService) {}

  /** A user's live sessions, newest first. Never tokens. */
  async listUserSessions(userId: string): Promise<SessionSummary[]> {
    return this.sessions.list(requireUserId(userId));
  }

  /** Revokes one session of anyone. False when no live session has that id. */
  async revokeSession(sessionId: string, admin: AdminActor): Promise<boolean> {
    if (!isSessionId(sessionId)) throw badRequest('session id must be a uuid');
    return this.sessions.revoke(sessionId, { reason: 'admin', actorId: requireActor(admin), request: admin.request });
  }

  /** Revokes every session of a user (e.g. account disabled). Returns how many. */
  async revokeAllUserSessions(userId: string, admin: AdminActor): Promise<number> {
    return this.sessions.revokeAll(requireUserId(userId), {
      reason: 'admin',
      actorId: requireActor(admin),
      request: admin.request,
    });
  }
}

function requireUserId(userId: unknown): string {
  if (typeof userId !== 'string' || !ID_PATTERN.test(userId))
    throw badRequest('user id must be 1..255 characters without control characters');
  return userId;
}

function requireActor(admin: AdminActor): string {
  if (typeof admin?.actorId !== 'string' || !ID_PATTERN.test(admin.actorId))
    throw new TypeError("SessionAdminService: admin.actorId (the admin's user id) is required");
  return admin.actorId;
}

function badRequest(message: string): BadRequestException {
  return new BadRequestException({ statusCode: 400, error: 'Bad Request', message: [message] });
}
