import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * TypeORM mapping of `session_audit_log` (append-only; written by the store's SQL). Partitioned
 * by week on occurred_at, so the primary key is (id, occurred_at); id alone is unique too (one
 * identity for all partitions).
 */
@Entity({ name: 'session_audit_log', synchronize: false })
export class SessionAuditLogEntity {
  @PrimaryColumn({ type: 'bigint' }) id: string;
  @PrimaryColumn({ name: 'occurred_at', type: 'timestamptz' }) occurredAt: Date;
  @Column({ type: 'text' }) event: string;
  @Column({ name: 'session_id', type: 'uuid', nullable: true }) sessionId: string | null;
  @Column({ name: 'user_id', type: 'text', nullable: true }) userId: string | null;
  @Column({ name: 'actor_id', type: 'text', nullable: true }) actorId: string | null;
  @Column({ type: 'text', nullable: true }) ip: string | null;
  @Column({ name: 'user_agent', type: 'text', nullable: true }) userAgent: string | null;
  @Column({ type: 'jsonb' }) details: Record<string, unknown>;
}
