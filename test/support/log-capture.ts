import { Logger, type LoggerService } from '@nestjs/common';

export interface LogEntry {
  level: 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context?: string;
}

/** A Nest logger that keeps what it is told, so a test can assert on log lines. */
export class CapturingLogger implements LoggerService {
  readonly entries: LogEntry[] = [];

  log(message: unknown, context?: string) {
    this.push('log', message, context);
  }
  warn(message: unknown, context?: string) {
    this.push('warn', message, context);
  }
  error(message: unknown, ...rest: unknown[]) {
    this.push('error', message, rest.at(-1) as string | undefined);
  }
  debug(message: unknown, context?: string) {
    this.push('debug', message, context);
  }
  verbose(message: unknown, context?: string) {
    this.push('verbose', message, context);
  }
  fatal(message: unknown, context?: string) {
    this.push('fatal', message, context);
  }

  from(context: string, level?: LogEntry['level']): LogEntry[] {
    return this.entries.filter((e) => e.context === context && (level === undefined || e.level === level));
  }

  clear() {
    this.entries.length = 0;
  }

  private push(level: LogEntry['level'], message: unknown, context?: string) {
    this.entries.push({ level, message: typeof message === 'string' ? message : JSON.stringify(message), context });
  }
}

/** Routes every `new Logger(context)` of this test file to a CapturingLogger. */
export function captureNestLogs(): CapturingLogger {
  const logger = new CapturingLogger();
  Logger.overrideLogger(logger);
  return logger;
}
