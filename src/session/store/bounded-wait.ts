/**
 * `work`, or, when it has not settled within `ms`, what `onTimeout` returns (or throws). pg's
 * query_timeout starts only once a pooled connection is checked out, so every wait that may
 * queue on the pool (an exhausted pool, a black-holed host) is bounded with this. The timer
 * never outlives the race.
 */
export async function within<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
