import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { filter, Subject, type Observable } from 'rxjs';
import type { AuditEvent } from './audit-event.js';
import type { SessionAuditRecord } from './audit-record.js';

/** Where writers of audit rows hand them over once their statement has committed. */
export interface AuditEventSink {
  publish(record: SessionAuditRecord): void;
}

/**
 * Hooks for the host app: every audit row this instance records is emitted here, after the
 * statement that wrote it (and the change it describes) has committed, so an observer never
 * sees an event that did not happen.
 *
 * ```ts
 * constructor(events: SessionEvents) {
 *   events.on('token_reuse_detected', 'revoked_all').subscribe((e) => alerts.send(e));
 * }
 * ```
 *
 * Each instance emits the events it recorded itself (so in a cluster every event is emitted
 * exactly once, somewhere). Delivery is synchronous inside the request that caused the event:
 * keep handlers cheap, or move work off the request with `observeOn(asyncScheduler)`. A
 * handler that throws does not fail the request or starve other observers, but RxJS rethrows
 * its error asynchronously (an uncaught exception): catch inside handlers.
 */
@Injectable()
export class SessionEvents implements AuditEventSink, OnModuleDestroy {
  private readonly logger = new Logger(SessionEvents.name);
  private readonly subject = new Subject<SessionAuditRecord>();

  /** Every recorded event. */
  readonly events$: Observable<SessionAuditRecord> = this.subject.asObservable();

  /** Whether anyone listens: a writer of many rows at once (the purge) fetches them only then. */
  get observed(): boolean {
    return this.subject.observed;
  }

  /** Only the named events. */
  on(...events: AuditEvent[]): Observable<SessionAuditRecord> {
    const wanted = new Set<string>(events);
    return this.events$.pipe(filter((record) => wanted.has(record.event)));
  }

  /**
   * Called by the module's writers once the statement that wrote `record` has committed.
   * Never throws into the writer (RxJS reports observer errors on its own; the catch covers
   * `useDeprecatedSynchronousErrorHandling`).
   */
  publish(record: SessionAuditRecord): void {
    try {
      this.subject.next(record);
    } catch (error) {
      this.logger.error(`a SessionEvents observer threw on '${record.event}': ${(error as Error)?.message}`);
    }
  }

  onModuleDestroy(): void {
    this.subject.complete();
  }
}
