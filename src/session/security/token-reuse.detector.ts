import type { AuditContext } from '../audit/audit-event.js';
import type { SessionStore } from '../store/session.store.js';
import type { RetiredToken } from '../store/session-row.js';

/**
 * Theft detection for every token a session has retired. A retired token is fine for the
 * requests that were in flight when it was rotated out; presented after the grace window,
 * two parties hold the session and the server cannot tell which is the real one, so the
 * session is revoked for both, with one `token_reuse_detected` row naming the generation
 * that came back (`{ generation, current, behind }`).
 *
 * The previous token is found by the hot path's own read (session-validator.ts); older ones
 * cost one more indexed read, for tokens the hot path did not find only.
 */
export class TokenReuseDetector {
  constructor(
    private readonly store: SessionStore,
    private readonly rotationGraceMs: number,
  ) {}

  /** The previous token, presented past its grace (the caller decided on the hot path's row): revoke. */
  async previousTokenReused(sessionId: string, tokenHash: Buffer, context: AuditContext): Promise<void> {
    // Only on theft: one more read, to name the generation (absent for a session last rotated before the migration).
    const retired = await this.store.findRetiredToken(tokenHash);
    await this.store.revoke(sessionId, 'token_reuse', context, {
      event: 'token_reuse_detected',
      details: retired?.sessionId === sessionId ? generations(retired) : undefined,
    });
  }

  /**
   * A token the hot path did not find. True when it is a retired token of a live session,
   * past its grace, and this call revoked that session. False for everything else, which the
   * caller answers exactly as an unknown token, flood limits included: a retired token of a
   * session already revoked, expired or forgotten reveals nothing an unknown one does not.
   * Inside the grace it is false too: the old token of a manual rotation (dropped at once,
   * in-flight requests may still carry it) or one pushed out of the previous slot early.
   */
  async retiredTokenReused(tokenHash: Buffer, context: () => AuditContext): Promise<boolean> {
    const retired = await this.store.findRetiredToken(tokenHash);
    if (!retired || !this.isReuse(retired)) return false;
    return this.store.revoke(retired.sessionId, 'token_reuse', context(), {
      event: 'token_reuse_detected',
      details: generations(retired),
    });
  }

  /** Decided on the database clock, as the hot path decides: a live session, the grace window over. */
  private isReuse(r: RetiredToken): boolean {
    const now = r.dbNow.getTime();
    return (
      r.revokedAt === null &&
      now < r.idleExpiresAt.getTime() &&
      now < r.absoluteExpiresAt.getTime() &&
      now > r.retiredAt.getTime() + this.rotationGraceMs
    );
  }
}

function generations(r: RetiredToken): { generation: number; current: number; behind: number } {
  return { generation: r.generation, current: r.currentGeneration, behind: r.currentGeneration - r.generation };
}
