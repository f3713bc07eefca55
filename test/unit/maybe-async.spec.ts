import { describe, expect, it } from '@jest/globals';
import { andThen } from '../../src/session/maybe-async.js';

describe('andThen (the hot path without promises)', () => {
  it('answers a plain value at once, not as a promise', () => {
    expect(andThen(2, (n) => n * 3)).toBe(6);
    expect(andThen(false, (skipped) => !skipped)).toBe(true);
  });

  it('a synchronous throw of the callback reaches the caller at once, not onError', () => {
    const onError = () => 'swallowed';
    expect(() =>
      andThen(
        1,
        () => {
          throw new Error('refused');
        },
        onError,
      ),
    ).toThrow('refused');
  });

  it('waits for a promise, and hands its rejection to onError', async () => {
    const later = andThen(Promise.resolve(2), (n) => n * 3);
    expect(later).toBeInstanceOf(Promise);
    await expect(later).resolves.toBe(6);
    await expect(
      andThen(
        Promise.reject(new Error('db down')),
        () => 'ok',
        () => 'failed',
      ),
    ).resolves.toBe('failed');
    await expect(andThen(Promise.reject(new Error('db down')), () => 'ok')).rejects.toThrow('db down');
  });
});
