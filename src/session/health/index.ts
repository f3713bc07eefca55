// The `nest-pg-session/health` entry: the one part of the library that needs @nestjs/terminus.
export { SessionHealthIndicator } from './session-health.indicator.js';
