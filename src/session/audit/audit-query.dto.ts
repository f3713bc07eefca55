import 'reflect-metadata';
import { BadRequestException } from '@nestjs/common';
import { plainToInstance, Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsDate,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  isISO8601,
  registerDecorator,
  validateSync,
  type ValidationArguments,
  type ValidationError,
} from 'class-validator';
import { AUDIT_EVENTS, type AuditEvent } from './audit-event.js';
import { parseIpFilter } from './ip-filter.js';

export const DEFAULT_AUDIT_PAGE_SIZE = 50;
export const MAX_AUDIT_PAGE_SIZE = 500;

/** User and actor ids: what user_sessions accepts (1..255 characters), minus control characters. */
// Control characters are what the pattern refuses (log injection), so the rule does not apply.
// eslint-disable-next-line no-control-regex
export const ID_PATTERN = /^[^\u0000-\u001f\u007f]{1,255}$/u;
const ID_MESSAGE = '$property must be 1..255 characters without control characters';
/** Any well-formed uuid, as Postgres' uuid type takes it (session ids are v4, older rows need not be). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** ISO 8601 with a zone when a time is given: '2025-01-31', '2025-01-31T12:00:00Z', '...+02:00'. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const DATE_MESSAGE = '$property must be an ISO 8601 date or date-time with a time zone, e.g. 2025-01-31T12:00:00Z';

/** Query strings give text; programmatic callers may pass Dates. Anything unusable is left as is, for IsDate to report. */
function toDate({ value }: { value: unknown }): unknown {
  if (value instanceof Date) return value;
  if (
    typeof value !== 'string' ||
    !ISO_WITH_ZONE.test(value) ||
    !isISO8601(value, { strict: true, strictSeparator: true })
  )
    return value;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date;
}

/** `events=created&events=revoked`, `events=created,revoked` and `['created']` all mean a list. */
function toList({ value }: { value: unknown }): unknown {
  if (value === undefined || value === null) return value;
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((item) => (typeof item === 'string' ? item.split(',') : [item]));
}

/** An address or a CIDR network, normalised (see ip-filter.ts); anything else is left as is, for IsIpOrNetwork to report. */
function toIpFilter({ value }: { value: unknown }): unknown {
  return parseIpFilter(value)?.text ?? value;
}

function IsIpOrNetwork() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isIpOrNetwork',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => parseIpFilter(value) !== undefined,
        defaultMessage: () =>
          '$property must be an IPv4 or IPv6 address, or a network in CIDR notation (e.g. 192.0.2.0/24, 2001:db8::/64)',
      },
    });
}

/** A valid Date strictly after the one in `other` (when both are valid). */
function IsAfter(other: string) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isAfter',
      target: target.constructor,
      propertyName,
      validator: {
        validate(value: unknown, args?: ValidationArguments) {
          const start = (args!.object as Record<string, unknown>)[other];
          return !(value instanceof Date) || !(start instanceof Date) || value.getTime() > start.getTime();
        },
        defaultMessage: () => `$property must be after ${other}`,
      },
    });
}

/**
 * Filters of `SessionAuditService.query()` and `GET /admin/sessions/audit`. Every field is
 * optional; they combine with AND. Works with Nest's ValidationPipe (`whitelist`,
 * `forbidNonWhitelisted`) and is validated again inside the service.
 */
export class AuditQueryDto {
  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  userId?: string;

  @IsOptional()
  @IsString()
  @Matches(UUID, { message: '$property must be a session id (uuid)' })
  sessionId?: string;

  @IsOptional()
  @IsString()
  @Matches(ID_PATTERN, { message: ID_MESSAGE })
  actorId?: string;

  /** Any of these events. */
  @IsOptional()
  @Transform(toList)
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(AUDIT_EVENTS.length * 2)
  @IsIn(AUDIT_EVENTS, { each: true, message: `each value in $property must be one of: ${AUDIT_EVENTS.join(', ')}` })
  events?: AuditEvent[];

  /**
   * An address (rows from it, and the aggregated rows of the IPv6 /64 that holds it) or a
   * network such as `192.0.2.0/24` or `2001:db8::/64` (rows whose address or network lies within it).
   */
  @IsOptional()
  @Transform(toIpFilter)
  @IsIpOrNetwork()
  ip?: string;

  /** Inclusive lower bound of occurred_at. */
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: DATE_MESSAGE })
  from?: Date;

  /** Exclusive upper bound of occurred_at. */
  @IsOptional()
  @Transform(toDate)
  @IsDate({ message: DATE_MESSAGE })
  @IsAfter('from')
  to?: Date;

  /** Page size, 1..500 (default 50). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_AUDIT_PAGE_SIZE)
  limit?: number;

  /** `nextCursor` of the previous page, with the same filters. */
  @IsOptional()
  @IsString()
  @MaxLength(128)
  cursor?: string;
}

export const SUMMARY_BUCKETS = ['minute', 'hour', 'day'] as const;
export type SummaryBucket = (typeof SUMMARY_BUCKETS)[number];

/** The widest range each bucket size may cover: at most a few thousand buckets per answer. */
export const MAX_SUMMARY_RANGE_MS: Record<SummaryBucket, number> = {
  minute: 2 * 86_400_000, // 2,880 buckets
  hour: 92 * 86_400_000, // 2,208 buckets: the default 90-day retention
  day: 731 * 86_400_000, // two years
};

function WithinBucketRange() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'withinBucketRange',
      target: target.constructor,
      propertyName,
      validator: {
        validate(to: unknown, args?: ValidationArguments) {
          const { from, bucket } = args!.object as AuditSummaryDto;
          if (!(to instanceof Date) || !(from instanceof Date) || !SUMMARY_BUCKETS.includes(bucket)) return true;
          return to.getTime() - from.getTime() <= MAX_SUMMARY_RANGE_MS[bucket];
        },
        defaultMessage: (args?: ValidationArguments) => {
          const bucket = (args!.object as AuditSummaryDto).bucket;
          return `the range from..to may span at most ${MAX_SUMMARY_RANGE_MS[bucket] / 86_400_000} days with bucket '${bucket}'`;
        },
      },
    });
}

/** `SessionAuditService.summary()` and `GET /admin/sessions/audit/summary`: counts per event per bucket. */
export class AuditSummaryDto {
  @Transform(toDate)
  @IsDate({ message: DATE_MESSAGE })
  from: Date;

  @Transform(toDate)
  @IsDate({ message: DATE_MESSAGE })
  @IsAfter('from')
  @WithinBucketRange()
  to: Date;

  @IsIn(SUMMARY_BUCKETS, { message: `$property must be one of: ${SUMMARY_BUCKETS.join(', ')}` })
  bucket: SummaryBucket;
}

/** What callers may pass: the DTO itself, or the same fields with dates as strings. */
export type AuditQueryInput = Omit<AuditQueryDto, 'from' | 'to'> & { from?: Date | string; to?: Date | string };
export type AuditSummaryInput = { from: Date | string; to: Date | string; bucket: SummaryBucket };

/**
 * Validates like `new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true })` and
 * answers the same way: 400 with every reason, so a bad filter never reaches SQL.
 */
export function validateDto<T extends object>(type: new () => T, input: unknown): T {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: ['the filter must be an object'] });
  }
  const dto = plainToInstance(type, input instanceof type ? { ...input } : input);
  const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  if (errors.length > 0)
    throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: flatten(errors) });
  return dto;
}

function flatten(errors: ValidationError[]): string[] {
  return errors.flatMap((error) => [...Object.values(error.constraints ?? {}), ...flatten(error.children ?? [])]);
}
