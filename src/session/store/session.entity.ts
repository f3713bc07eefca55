import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * TypeORM mapping of `user_sessions`, so hosts with `autoLoadEntities` know the table and can
 * query it. The table itself comes from the migration; the module's own SQL lives in
 * session.sql.ts.
 */
@Entity({ name: 'user_sessions', synchronize: false })
export class UserSessionEntity {
  @PrimaryColumn({ type: 'uuid' }) id: string;
  @Index({ unique: true }) @Column({ name: 'token_hash', type: 'bytea' }) tokenHash: Buffer;
  @Column({ name: 'previous_token_hash', type: 'bytea', nullable: true }) previousTokenHash: Buffer | null;
  /** NULL for a guest session. */
  @Column({ name: 'user_id', type: 'text', nullable: true }) userId: string | null;
  /** The lifetime profile it was created with ('default', 'guest', or a name from `lifetimes`). */
  @Column({ type: 'text', default: 'default' }) lifetime: string;
  @Column({ type: 'jsonb', default: {} }) data: Record<string, unknown>;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'last_seen_at', type: 'timestamptz' }) lastSeenAt: Date;
  @Column({ name: 'authenticated_at', type: 'timestamptz' }) authenticatedAt: Date;
  @Column({ name: 'idle_expires_at', type: 'timestamptz' }) idleExpiresAt: Date;
  @Column({ name: 'absolute_expires_at', type: 'timestamptz' }) absoluteExpiresAt: Date;
  @Column({ name: 'rotated_at', type: 'timestamptz' }) rotatedAt: Date;
  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true }) revokedAt: Date | null;
  @Column({ name: 'revoke_reason', type: 'text', nullable: true }) revokeReason: string | null;
  @Column({ type: 'text', nullable: true }) ip: string | null;
  @Column({ name: 'user_agent', type: 'text', nullable: true }) userAgent: string | null;
  @Column({ type: 'integer' }) version: number;
  /** 0 for the token issued at login, +1 per rotation (the retired ones are in session_retired_tokens). */
  @Column({ name: 'token_generation', type: 'integer' }) tokenGeneration: number;
}
