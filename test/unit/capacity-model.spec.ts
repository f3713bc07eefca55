import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = new URL('../../', import.meta.url).pathname;
const scaling = readFileSync(join(ROOT, 'docs/scaling.md'), 'utf8');

/** The tables bench/capacity-model.mjs prints from the committed measurements, from `from` on. */
const printed = (flags: string[], from: string) => {
  const out = execFileSync(process.execPath, ['bench/capacity-model.mjs', ...flags], { cwd: ROOT, encoding: 'utf8' });
  return out.slice(out.indexOf(from)).trimEnd();
};

type Flows = Record<string, number>;
interface FlowsModule {
  flows: (o: Record<string, number | boolean>, n: number) => Flows;
  RETIRED_KEPT: number;
}
// Loaded by URL: a plain .mjs script outside the TypeScript project.
const load = async () => (await import(pathToFileURL(join(ROOT, 'bench/capacity-flows.mjs')).href)) as FlowsModule;

/** The model's defaults (bench/capacity-model.mjs), seconds. */
const BASE = {
  idle: 1800,
  touch: 60,
  rotation: 900,
  ttl: 5,
  purgeEvery: 300,
  pageSeconds: 30,
  requestsPerPage: 4,
  sessionHours: 1,
  logoutShare: 0.1,
  patchesPerHour: 0,
  instances: 8,
  sticky: false,
  remember: 0,
  rememberDays: 30,
  visitsPerDay: 1,
  guestsPerUserDay: 0,
  guestMinutes: 5,
  guestIdle: 1200,
};

describe('the capacity model (docs/scaling.md)', () => {
  it('prints, line for line, the tables the docs show', () => {
    expect(scaling).toContain(printed([], '**SQL per second**'));
    expect(scaling).toContain(printed(['--remember=0.1', '--guests-per-user-day=1'], '**Rows and bytes**'));
  });

  it('without remember me or guests: a login per visit, a rotation per interval of use, no cap deletes', async () => {
    const { flows } = await load();
    const r = flows(BASE, 1_000_000);
    expect(r.logins).toBeCloseTo(1_000_000 / 3600, 6);
    expect(r.rotations).toBeCloseTo(1_000_000 / 900, 6);
    expect(r.retiredCapDeletes).toBe(0);
    expect(r.guestStarts).toBe(0);
  });

  it('keeps at most 64 retired rows per session, and deletes every retired row it writes', async () => {
    const { flows, RETIRED_KEPT } = await load();
    for (const o of [
      { ...BASE, remember: 1, visitsPerDay: 24 }, // a remembered row in use all day: 2,880+ rotations
      { ...BASE, rotation: 60, sessionHours: 8 }, // 480 rotations per visit
      { ...BASE, remember: 0.3, guestsPerUserDay: 2 },
    ]) {
      const r = flows(o, 100_000);
      expect(r.retiredRows / r.sessionRows).toBeLessThanOrEqual(RETIRED_KEPT);
      expect(r.retiredCapDeletes + r.retiredCascadeDeletes).toBeCloseTo(r.rotations, 6);
    }
    const allDay = flows({ ...BASE, remember: 1, visitsPerDay: 24 }, 100_000);
    expect(allDay.rotationsPerRemembered).toBeGreaterThanOrEqual(2880);
    expect(allDay.retiredCapDeletes).toBeGreaterThan(0);
  });
});
