import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The peers a host app installs next to the package (the optional ones left out). */
export const REQUIRED_PEERS = [
  '@nestjs/common@12',
  '@nestjs/core@12',
  '@nestjs/platform-express@12',
  '@nestjs/typeorm@12',
  '@nestjs/schedule@12',
  'typeorm@1',
  'pg@8',
  'class-validator',
  'class-transformer',
  'reflect-metadata',
  'rxjs',
];

export const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

export interface PackedApp {
  /** The scratch app's directory, with the tarball and the peers installed. */
  dir: string;
  tarball: string;
  files: string[];
  remove(): void;
}

/**
 * What a user gets from the registry: `npm pack` (dist/ must be built: `npm test` builds it;
 * prepack's rebuild is skipped), installed with the required peers into a scratch ESM app.
 */
export function installPackedPackage(): PackedApp {
  const dir = mkdtempSync(join(tmpdir(), 'nps-pack-'));
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT));
  const tarball = join(dir, packed.filename);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
  run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...REQUIRED_PEERS],
    dir,
  );
  return {
    dir,
    tarball,
    files: packed.files.map((f: { path: string }) => f.path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
