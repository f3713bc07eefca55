/** A duration in milliseconds, or a string such as '500ms', '30s', '30m', '12h', '7d'. */
export type Duration = number | string;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = /^(\d+)\s*(ms|s|m|h|d)$/;

/** Parses a duration; returns undefined for anything that is not a non-negative finite duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return parseDuration(Number(trimmed));
  const match = DURATION_PATTERN.exec(trimmed);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Milliseconds as a user would write them: in the largest unit that divides them ('12h', '90s', '1500ms'). */
export function formatDuration(ms: number): string {
  const units = Object.entries(UNIT_MS).reverse();
  const [unit, size] = units.find(([, size]) => ms % size === 0 && ms > 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}
