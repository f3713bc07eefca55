import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';

const ROOT = new URL('../../', import.meta.url).pathname;

interface Manifest {
  name: string;
  version: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const readManifest = (path: string): Manifest => JSON.parse(readFileSync(path, 'utf8')) as Manifest;
const ours = readManifest(join(ROOT, 'package.json'));
const installed = (name: string) => readManifest(join(ROOT, 'node_modules', name, 'package.json'));

/**
 * A package whose `engines.node` is wider than one of its runtime dependencies' promises a Node
 * version that dependency refuses: `engine-strict` installs fail with EBADENGINE, and users on
 * that version run code its authors do not support. Our range must lie inside each of theirs.
 */
function engineMismatch(range: string, dependency: Manifest): string | undefined {
  const theirs = dependency.engines?.node;
  if (theirs === undefined || semver.subset(range, theirs)) return undefined;
  return `${dependency.name}@${dependency.version} needs node ${theirs}, but package.json declares ${range}`;
}

describe('package.json engines', () => {
  const range = ours.engines?.node ?? '';

  it('declares a valid node range', () => {
    expect(semver.validRange(range)).not.toBeNull();
  });

  it("is no wider than any runtime dependency's engines.node (installed version)", () => {
    const names = Object.keys(ours.dependencies ?? {});
    expect(names.length).toBeGreaterThan(0);
    expect(names.map((name) => engineMismatch(range, installed(name))).filter(Boolean)).toEqual([]);
  });

  it("is no wider than any peer's engines.node, required or optional (installed version)", () => {
    const names = Object.keys(ours.peerDependencies ?? {});
    expect(names).toEqual(expect.arrayContaining(['@nestjs/core', 'typeorm', 'pg']));
    expect(names.map((name) => engineMismatch(range, installed(name))).filter(Boolean)).toEqual([]);
  });

  it('catches a dependency that needs a newer node, naming it (cookie@2 needs >= 22)', () => {
    const cookie2: Manifest = { name: 'cookie', version: '2.0.2', engines: { node: '>=22' } };
    expect(engineMismatch('>=20.19', cookie2)).toBe('cookie@2.0.2 needs node >=22, but package.json declares >=20.19');
    expect(engineMismatch(range, cookie2)).toMatch(/^cookie@2\.0\.2 needs node >=22/);
    expect(engineMismatch(range, { name: 'no-engines', version: '1.0.0' })).toBeUndefined();
  });
});
