import { describe, expect, it } from '@jest/globals';
import { BadRequestException, HttpException, PayloadTooLargeException } from '@nestjs/common';
import { assertStorableData } from '../../src/session/session-data.js';

const LIMIT = 65_536;

/** Runs the check on data that must be refused; returns the HttpException so a test can read it. */
function refused(value: unknown, maxBytes = LIMIT): HttpException {
  let thrown: unknown;
  try {
    assertStorableData(value, maxBytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(HttpException);
  return thrown as HttpException;
}

function expectBadRequest(value: unknown, path?: string): HttpException {
  const error = refused(value);
  expect(error).toBeInstanceOf(BadRequestException);
  expect(error.getStatus()).toBe(400);
  if (path !== undefined) expect(error.message).toContain(` at ${path}`);
  return error;
}

/** `levels` nested objects under the root: {a:{a:...{a: leaf}}}. The leaf sits at depth `levels`. */
function nestedObjects(levels: number, leaf: unknown = 1): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value as Record<string, unknown>;
}

class Preferences {
  theme = 'dark';
}

describe('assertStorableData accepts JSON that jsonb stores', () => {
  it.each([
    ['an empty object', {}],
    ['scalars', { s: 'text', n: 42, f: -1.5, z: -0, t: true, f2: false, nil: null }],
    [
      'nested objects and arrays',
      { user: { id: '42', roles: ['admin', 'ops'], prefs: { tags: [[1, 2], [{ x: null }]] } } },
    ],
    [
      'unicode, including astral characters and well-formed surrogate pairs',
      { name: 'Zoë 日本 \u{1F600}', key: '\uD83D\uDE00' },
    ],
    [
      'a null-prototype object',
      Object.assign(Object.create(null) as object, { a: 1, b: Object.assign(Object.create(null) as object, { c: 2 }) }),
    ],
    ['JSON.parse output with a __proto__ key', JSON.parse('{"__proto__": {"x": 1}}') as unknown],
    ['large but finite numbers', { max: Number.MAX_VALUE, min: -Number.MAX_VALUE, tiny: Number.MIN_VALUE }],
  ])('accepts %s', (_, value) => {
    expect(() => assertStorableData(value, LIMIT)).not.toThrow();
  });
});

describe('assertStorableData refuses what jsonb or JSON cannot store, with 400', () => {
  it.each([
    ['an array', [{ a: 1 }]],
    ['null', null],
    ['undefined', undefined],
    ['a string', '{"a":1}'],
    ['a number', 1],
    ['a Date', new Date()],
    ['a Map', new Map([['a', 1]])],
    ['a class instance', new Preferences()],
  ])('refuses %s at the top level', (_, value) => {
    expectBadRequest(value);
  });

  it('refuses a NUL character in a value, naming the path', () => {
    expectBadRequest({ a: 'x\u0000y' }, '$.a');
    expectBadRequest({ user: { tags: ['ok', 'bad\u0000'] } }, '$.user.tags[1]');
    expect(refused({ note: '\u0000' }).message).toMatch(/NUL/);
  });

  it('refuses a NUL character in a key, naming where the key is', () => {
    expectBadRequest({ 'a\u0000b': 1 }, '$ (key)');
    expectBadRequest({ outer: { 'k\u0000': 'v' } }, '$.outer (key)');
    expectBadRequest({ list: [{ '\u0000': true }] }, '$.list[0] (key)');
  });

  it.each([
    ['a lone high surrogate', '\uD800'],
    ['a lone low surrogate', '\uDC00'],
    ['a reversed pair', '\uDE00\uD83D'],
    ['a high surrogate at the end', 'abc\uD83D'],
  ])('refuses %s in a value or a key', (_, text) => {
    expect(expectBadRequest({ s: text }, '$.s').message).toMatch(/Unicode/);
    expectBadRequest({ deep: [text] }, '$.deep[0]');
    expectBadRequest({ [text]: 1 }, '$ (key)');
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('refuses the non-finite number %s', (_, n) => {
    expectBadRequest({ n }, '$.n');
    expectBadRequest({ list: [1, n] }, '$.list[1]');
  });

  it.each([
    ['a function', () => 1],
    ['a bigint', 10n],
    ['a symbol', Symbol('s')],
    ['undefined', undefined],
  ])('refuses %s as a value', (_, value) => {
    expectBadRequest({ v: value }, '$.v');
    expectBadRequest({ list: [value] }, '$.list[0]');
  });

  it.each([
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a Set', new Set([1])],
    ['a Buffer', Buffer.from('secret')],
    ['a typed array', new Uint8Array(4)],
    ['a RegExp', /x/],
    ['a class instance', new Preferences()],
    ['a boxed string', Object('text')],
    ['an Error', new Error('boom')],
  ])('refuses %s nested in the data', (_, value) => {
    expectBadRequest({ nested: { value } }, '$.nested.value');
  });

  it('allows 32 levels of nesting and refuses 33', () => {
    expect(() => assertStorableData(nestedObjects(32), LIMIT)).not.toThrow();
    expect(() => assertStorableData(nestedObjects(31, {}), LIMIT)).not.toThrow();
    const error = expectBadRequest(nestedObjects(33));
    expect(error.message).toMatch(/deeper than 32/);
    expect(error.message).toContain(`$${'.a'.repeat(33)}`);
  });

  it('counts arrays as nesting levels too', () => {
    let deepArray: unknown = 1;
    for (let i = 0; i < 40; i++) deepArray = [deepArray];
    expect(expectBadRequest({ a: deepArray }).message).toMatch(/deeper than 32/);
  });

  it('refuses cyclic data with a 400 instead of overflowing the stack', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    expect(expectBadRequest(cyclic).message).toMatch(/deeper than 32/);
  });

  it('shortens long keys in the path it reports', () => {
    const key = 'k'.repeat(500);
    const error = expectBadRequest({ [key]: Number.NaN });
    expect(error.message).toContain(`$.${'k'.repeat(40)}`);
    expect(error.message).not.toContain('k'.repeat(41));
  });
});

describe('assertStorableData size limit', () => {
  it('accepts data of exactly maxBytes and refuses one byte more with 413', () => {
    const exact = { v: 'x'.repeat(100 - '{"v":""}'.length) };
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(100);
    expect(() => assertStorableData(exact, 100)).not.toThrow();

    const error = refused(exact, 99);
    expect(error).toBeInstanceOf(PayloadTooLargeException);
    expect(error.getStatus()).toBe(413);
    expect(error.message).toContain('100 bytes');
    expect(error.message).toContain('99-byte');
  });

  it('measures UTF-8 bytes, not UTF-16 code units', () => {
    const data = { v: '\u00e9'.repeat(60) }; // 60 characters, 120 bytes
    expect(JSON.stringify(data).length).toBeLessThanOrEqual(100);
    expect(refused(data, 100)).toBeInstanceOf(PayloadTooLargeException);
    const astral = { v: '\u{1F600}'.repeat(20) }; // 40 code units, 80 bytes
    expect(refused(astral, 60)).toBeInstanceOf(PayloadTooLargeException);
  });

  it('measures the JSON as stored, escapes included', () => {
    const data = { v: '"'.repeat(50) }; // 50 characters, 100 once escaped
    expect(refused(data, 80)).toBeInstanceOf(PayloadTooLargeException);
  });

  it('reports malformed data as 400 before measuring its size', () => {
    expect(refused({ v: 'x'.repeat(1_000), bad: '\u0000' }, 10)).toBeInstanceOf(BadRequestException);
  });
});
