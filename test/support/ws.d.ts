// The `ws` client as the WebSocket tests use it (@types/ws is not installed).
declare module 'ws' {
  import { EventEmitter } from 'node:events';

  export default class WebSocket extends EventEmitter {
    constructor(url: string, options?: { headers?: Record<string, string> });
    send(data: string): void;
    close(): void;
    once(event: 'open' | 'message' | 'error', listener: (arg: any) => void): this;
  }
}
