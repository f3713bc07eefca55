import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

/**
 * Sessions on WebSocket and socket.io connections (`SessionSockets`): the handshake is
 * validated, and a socket is closed when its session ends.
 */
export class SessionSocketOptions {
  /**
   * Turns on the LISTEN connection (even without the cache) and, unless `cache.notify` is set
   * false, the NOTIFY that tells every instance which session changed: sockets close within 1 s.
   */
  @is.Bool() enabled?: boolean;
  /**
   * Without NOTIFY (`cache.notify: false`, e.g. behind a pooler in transaction mode) or while
   * the LISTEN connection is down, open sockets' sessions are re-read this often (one query).
   */
  @is.Dur({ min: '1s', max: '5m' }) recheckInterval?: Duration;
}
