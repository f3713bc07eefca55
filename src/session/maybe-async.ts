/** A value now, or a promise of one. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Calls `onValue` at once with a plain value, or when a promise fulfils (`onError` on its
 * rejection). The hot path is built on it so that a request with nothing to wait for (a
 * public route, a cache hit, a refusal that needs no SQL) is decided without a promise.
 */
export function andThen<T, R>(
  value: MaybePromise<T>,
  onValue: (value: T) => MaybePromise<R>,
  onError?: (error: unknown) => MaybePromise<R>,
): MaybePromise<R> {
  return isPromiseLike(value) ? value.then(onValue, onError) : onValue(value);
}

function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Partial<Promise<T>> | null)?.then === 'function';
}
