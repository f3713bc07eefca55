// The `ws` client as the WebSocket tests use it (@types/ws is not a dependency of its own).
declare module 'ws' {
  import { EventEmitter } from 'node:events';

  export default class WebSocket extends EventEmitter {
    static readonly OPEN: 1;
    static readonly CLOSED: 3;
    readonly readyState: 0 | 1 | 2 | 3;
    constructor(url: string, options?: { headers?: Record<string, string> });
    send(data: string): void;
    close(code?: number, reason?: string): void;
    once(event: 'open' | 'message' | 'error', listener: (arg: any) => void): this;
    once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
    once(event: 'message', listener: (data: Buffer) => void): this;
  }
}
