import 'reflect-metadata';
import { IsOptional, ValidateBy, ValidateNested, validateSync, type ValidationError } from 'class-validator';
import { parseDuration, type Duration } from './duration.js';

// The building blocks of the option schemas: each option is a class property whose decorator
// checks it on its own, through class-validator. Rules between options are in session-option-rules.ts.

/** Thrown at start-up; the message names each bad option, one per line. */
export class SessionOptionsError extends Error {
  override name = 'SessionOptionsError';

  static of(problems: string[]): SessionOptionsError {
    return new SessionOptionsError(`Invalid SessionModule options:\n  - ${problems.join('\n  - ')}`);
  }
}

type OptionDecorator = (target: object, property: string) => void;
type Schema = new () => object;

/** A value as it would be written in the options: strings quoted. */
export function quoted(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  if (typeof value !== 'object' || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return 'an object that is not plain data'; // cycles, bigints
  }
}

/** An option that passes `test` (or is absent, unless `required`); `problem` says what it must be. */
export function Check(
  test: (value: unknown) => boolean,
  problem: string | ((value: unknown) => string),
  required = false,
) {
  const check = ValidateBy({
    name: 'option',
    validator: {
      validate: test,
      defaultMessage: (args) =>
        `${typeof problem === 'string' ? problem : problem(args?.value)}; got ${quoted(args?.value)}`,
    },
  });
  return (target: object, property: string) => {
    if (!required) IsOptional()(target, property);
    check(target, property);
  };
}

export const Bool = () => Check((v) => typeof v === 'boolean', 'must be true or false');
export const OneOf = (values: readonly string[]) =>
  Check((v) => values.includes(v as string), `must be one of ${values.map(quoted).join(', ')}`);
export const Text = (pattern: RegExp, problem: string) =>
  Check((v) => typeof v === 'string' && pattern.test(v), problem);
export const Int = (min: number, max: number, required = false) =>
  Check(
    (v) => Number.isSafeInteger(v) && Number(v) >= min && Number(v) <= max,
    `must be an integer from ${min} to ${max}`,
    required,
  );
export const Fraction = (min: number, max: number) =>
  Check((v) => typeof v === 'number' && v >= min && v <= max, `must be a number from ${min} to ${max}`);

export const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;
export const CookieName = () => Text(COOKIE_NAME, 'must be a cookie token of 1..64 characters');
export const HeaderName = () => Text(/^[a-z][a-z0-9-]{0,63}$/i, 'must be an HTTP header name');

/** A duration of at least `min` (default 0) and at most `max`; `or`: one more value accepted. */
export function Dur({
  min = 0,
  max,
  or,
  required = false,
}: { min?: Duration; max?: Duration; or?: 0 | false; required?: boolean } = {}) {
  const [least, most] = [parseDuration(min)!, parseDuration(max ?? Number.MAX_SAFE_INTEGER)!];
  const kind = least === 0 ? 'non-negative ' : least === 1 ? 'positive ' : '';
  const limits = [least > 1 && `at least ${quoted(min)}`, max !== undefined && `at most ${quoted(max)}`];
  const of = limits.filter(Boolean).join(' and ');
  return Check(
    (value) =>
      (or !== undefined && value === or) ||
      ((ms) => ms !== undefined && ((or === 0 && ms === 0) || (ms >= least && ms <= most)))(parseDuration(value)),
    `must be a ${kind}duration${of && ` of ${of}`} (milliseconds, or a string like '30s', '30m', '12h')` +
      (or === undefined ? '' : `, or ${or}`),
    required,
  );
}

interface NestedSchema {
  schema: () => Schema;
  /** A map of named groups: each key must match, each value is checked by the schema. */
  keys?: { pattern: RegExp; problem: string };
}
const NESTED = new Map<object, Map<string, NestedSchema>>();

/** A group of options, checked by its own schema. */
export const Nested =
  (schema: () => Schema): OptionDecorator =>
  (target, property) => {
    Check((value) => !Array.isArray(value), 'must be an object')(target, property);
    ValidateNested({ message: 'must be an object' })(target, property);
    NESTED.set(target, (NESTED.get(target) ?? new Map()).set(property, { schema }));
  };

/** Named groups of options (`{ remember: {...}, kiosk: {...} }`): each name matches `pattern`, each group its schema. */
export const NestedMap =
  (schema: () => Schema, pattern: RegExp, problem: string): OptionDecorator =>
  (target, property) => {
    Check((value) => !Array.isArray(value), 'must be an object of named groups')(target, property);
    ValidateNested({ message: 'must be an object of named groups' })(target, property);
    NESTED.set(target, (NESTED.get(target) ?? new Map()).set(property, { schema, keys: { pattern, problem } }));
  };

/**
 * The schema instance class-validator checks. Own properties only, and no key that an object
 * inherits (`__proto__`, `constructor`): class-validator's whitelist would let those through.
 */
function instantiate(schema: Schema, plain: object, path: string, problems: string[]): object {
  const instance = new schema();
  for (const [key, value] of Object.entries(plain)) {
    if (key in Object.prototype) {
      problems.push(`${path}${key}: property ${key} should not exist`);
      continue;
    }
    const nested = NESTED.get(schema.prototype)?.get(key);
    const isGroup = nested && typeof value === 'object' && value !== null && !Array.isArray(value);
    const own = !isGroup
      ? value
      : nested.keys
        ? instantiateMap(nested as Required<NestedSchema>, value, `${path}${key}.`, problems)
        : instantiate(nested.schema(), value, `${path}${key}.`, problems);
    Object.defineProperty(instance, key, { value: own, enumerable: true, writable: true, configurable: true });
  }
  return instance;
}

/** A Map of schema instances (class-validator checks each value, naming it by its key); bad names are problems. */
function instantiateMap(nested: Required<NestedSchema>, plain: object, path: string, problems: string[]) {
  const groups = new Map<string, unknown>();
  for (const [name, value] of Object.entries(plain)) {
    if (!nested.keys.pattern.test(name) || name in Object.prototype) {
      problems.push(`${path}${name}: ${nested.keys.problem}`);
      continue;
    }
    const isGroup = typeof value === 'object' && value !== null && !Array.isArray(value);
    groups.set(name, isGroup ? instantiate(nested.schema(), value, `${path}${name}.`, problems) : value);
  }
  return groups;
}

/** Every problem of single options as '<path>: <problem>', unknown keys included. */
export function problemsOf(schema: Schema, options: object): string[] {
  const flatten = (errors: ValidationError[], prefix: string): string[] =>
    errors.flatMap((error) => [
      ...new Set(Object.values(error.constraints ?? {}).map((problem) => `${prefix}${error.property}: ${problem}`)),
      ...flatten(error.children ?? [], `${prefix}${error.property}.`),
    ]);
  const problems: string[] = [];
  const instance = instantiate(schema, options, '', problems);
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  return [...flatten(errors, ''), ...problems];
}

// Filling in the defaults (session.options.ts): given options over DEFAULTS, group by group.

export type Partly<T> = { [K in keyof T]?: T[K] extends object | undefined ? Partly<T[K]> : T[K] };
export type Group = Record<string, unknown>;
/** T with the defaults D filled in: those keys are no longer optional. */
export type Filled<T, D> = Omit<T, keyof D> & {
  [K in keyof D & keyof T]-?: D[K] extends Group ? Filled<NonNullable<T[K]>, D[K]> : Exclude<T[K], undefined>;
};

export const isGroup = (value: unknown): value is Group =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value !== 'function';
export const isGiven = (value: unknown) => value !== undefined && value !== null;
export const at = (root: unknown, path: string) =>
  path.split('.').reduce<unknown>((o, key) => (isGroup(o) ? o[key] : undefined), root);

/** The given options over the defaults, group by group; a given value is kept as the very object. */
export function fill(given: Group, defaults: Group): Group {
  const filled: Group = { ...defaults };
  for (const [key, value] of Object.entries(given)) if (isGiven(value)) filled[key] = value;
  for (const [key, value] of Object.entries(defaults)) {
    if (isGroup(value)) filled[key] = fill(isGroup(given[key]) ? given[key] : {}, value);
  }
  return filled;
}
