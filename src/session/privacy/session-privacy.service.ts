import { BadRequestException, Injectable, Optional } from '@nestjs/common';
import { ID_PATTERN, validateDto } from '../audit/audit-query.dto.js';
import type { SessionAuditRecord } from '../audit/audit-record.js';
import { AggregatedAuditLog } from '../security/aggregated-audit.js';
import { auditContext } from '../session-validator.js';
import { SessionStore } from '../store/session.store.js';
import type { HttpRequestLike } from '../transport/http.js';
import { EraseUserQueryDto } from './erase-user.dto.js';
import { withoutPersonalDetails } from './personal-details.js';
import { PSEUDONYM_PATTERN } from './pseudonym.js';
import { SessionPrivacyStore, type ErasureCounts, type ErasureMode } from './privacy.store.js';

/** The export's bound on sessions (the newest); `truncated.sessions` says when there were more. */
export const MAX_EXPORTED_SESSIONS = 200;
/** The export's bound on audit events (the newest); `truncated.auditEvents` says when there were more. */
export const MAX_EXPORTED_AUDIT_EVENTS = 5_000;

/** The second argument of `SessionPrivacyService.eraseUser`. */
export interface EraseUserOptions {
  /** Who erases (an admin's user id, or the user's own): the audit row's actor. Required. */
  actorId: string;
  /** 'anonymise' (default): audit rows stay, without address, user agent or user id; 'delete': they go. */
  mode?: ErasureMode;
  /** The eraser's request: its address and user agent go on the `personal_data_erased` row. */
  request?: HttpRequestLike;
}

/** What `eraseUser` did (also the `details` of its `personal_data_erased` row, with the mode). */
export interface ErasureResult extends ErasureCounts {
  mode: ErasureMode;
  /** The user's stand-in in the audit log from now on (the subject of the `personal_data_erased` row). */
  pseudonym: string;
}

/** One session in the export: what the module stores about it, never a token or token hash. */
export interface ExportedSession {
  id: string;
  /** The session's user: null for a guest session that became this user's at a login. */
  userId: string | null;
  guest: boolean;
  createdAt: Date;
  lastSeenAt: Date;
  authenticatedAt: Date;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
  lifetime: string;
  ip: string | null;
  userAgent: string | null;
  /** An impersonation session: the admin acting as `userId`, and the admin's own session. */
  impersonatorId: string | null;
  impersonatorSessionId: string | null;
  data: Record<string, unknown>;
}

/** What `exportUser` returns: JSON-ready (dates serialise as ISO strings). */
export interface PersonalDataExport {
  userId: string;
  /** This server's clock when the export was read. */
  exportedAt: Date;
  /** Newest first, at most MAX_EXPORTED_SESSIONS: live ones, revoked ones kept until expiry, guest and impersonation ones. */
  sessions: ExportedSession[];
  /** Newest first, at most MAX_EXPORTED_AUDIT_EVENTS, as the admin audit API presents them. */
  auditEvents: SessionAuditRecord[];
  /** True where the bound cut rows off: the audit API (`?userId=`, `?actorId=`) pages through the rest. */
  truncated: { sessions: boolean; auditEvents: boolean };
}

/**
 * A user's rights over their data (GDPR Art. 15 and 17): `exportUser` gives what the module
 * stores about them, `eraseUser` removes it. Call eraseUser after disabling the account: a
 * login that commits after the erasure starts a new session as usual.
 */
@Injectable()
export class SessionPrivacyService {
  constructor(
    private readonly privacy: SessionPrivacyStore,
    private readonly sessions: SessionStore,
    /** This instance's buffered invalid-token/CSRF tallies (absent in the CLI). */
    @Optional() private readonly aggregated?: AggregatedAuditLog,
  ) {}

  /**
   * In one transaction: deletes every session of the user (caches and sockets on every instance
   * drop them on the NOTIFY), their guest sessions before login and the impersonations they
   * started, with the retired token hashes of all of them; anonymises or deletes their audit rows
   * (see docs/privacy.md); records `personal_data_erased` with the actor, mode and counts, under
   * the user's pseudonym. Idempotent: an unknown or already erased user gives zero counts.
   */
  async eraseUser(userId: string, options: EraseUserOptions): Promise<ErasureResult> {
    requireUserId(userId);
    if (typeof options?.actorId !== 'string' || !ID_PATTERN.test(options.actorId))
      throw new TypeError('SessionPrivacyService.eraseUser: actorId (who erases) must be 1..255 characters');
    const { mode = 'anonymise' } = validateDto(EraseUserQueryDto, { mode: options.mode });
    if (mode === 'anonymise' && PSEUDONYM_PATTERN.test(userId))
      throw badRequest(`${userId} is already a pseudonym: its rows can only be deleted (mode 'delete')`);
    // The erasure row is about the eraser, who stays: their real id and request. Users erasing
    // themselves (account deletion) are recorded by their pseudonym, without an address.
    const context = options.request && options.actorId !== userId ? auditContext(options.request, options.actorId) : {};
    // Tallies not yet written would land after the erasure with the user's id and user agents.
    this.aggregated?.forgetUser(userId);
    const { counts, pseudonym } = await this.privacy.erase({ userId, mode, actorId: options.actorId, context });
    return { mode, pseudonym, ...counts };
  }

  /** The user's sessions (with their data) and audit events as JSON-ready objects; bounded (see the constants). */
  async exportUser(userId: string): Promise<PersonalDataExport> {
    requireUserId(userId);
    const [sessions, auditEvents] = await Promise.all([
      this.sessions.sessionsOfUser(userId, MAX_EXPORTED_SESSIONS + 1),
      this.privacy.auditOfUser(userId, MAX_EXPORTED_AUDIT_EVENTS + 1),
    ]);
    return {
      userId,
      exportedAt: new Date(),
      sessions: sessions.slice(0, MAX_EXPORTED_SESSIONS).map((s) => {
        // An impersonation session the user started as an admin: its data is the target user's.
        const theirs = s.userId === null || s.userId === userId;
        return {
          id: s.id,
          userId: s.userId,
          guest: s.userId === null,
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          authenticatedAt: s.authenticatedAt,
          idleExpiresAt: s.idleExpiresAt,
          absoluteExpiresAt: s.absoluteExpiresAt,
          revokedAt: s.revokedAt,
          revokeReason: s.revokeReason,
          lifetime: s.lifetime,
          ip: theirs ? s.ip : null,
          userAgent: theirs ? s.userAgent : null,
          impersonatorId: s.impersonatorId,
          impersonatorSessionId: s.impersonatorSessionId,
          data: theirs ? s.data : {},
        };
      }),
      auditEvents: auditEvents.slice(0, MAX_EXPORTED_AUDIT_EVENTS).map((event) => aboutUser(event, userId)),
      truncated: {
        sessions: sessions.length > MAX_EXPORTED_SESSIONS,
        auditEvents: auditEvents.length > MAX_EXPORTED_AUDIT_EVENTS,
      },
    };
  }
}

/**
 * A row where the user is only the actor (an admin acting on another user) holds the other
 * user's address, user agent and personal details: the export keeps the facts, not those.
 */
function aboutUser(event: SessionAuditRecord, userId: string): SessionAuditRecord {
  if (event.actorId !== userId || event.userId === userId || event.userId === null) return event;
  return { ...event, ip: null, userAgent: null, details: withoutPersonalDetails(event.details) };
}

function requireUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || !ID_PATTERN.test(userId))
    throw badRequest('user id must be 1..255 characters without control characters');
}

function badRequest(message: string): BadRequestException {
  return new BadRequestException({ statusCode: 400, error: 'Bad Request', message: [message] });
}
