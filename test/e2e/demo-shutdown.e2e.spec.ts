import { afterEach, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { launchDemo } from '../support/demo-process.js';

/**
 * `npm start` without DATABASE_URL runs a throwaway PostgreSQL in /tmp/nest-pg-session-*
 * (~40 MB). These tests run the built demo as `npm start` does and end it the ways people
 * do: Ctrl-C in a terminal (SIGINT to the whole process group, the server included),
 * `docker stop` or systemd (SIGTERM to the process), an impatient second Ctrl-C, and a start
 * that fails after the cluster is up. Each time the directory must be gone.
 */
const STOP_BOUND_MS = 15_000;
const started: Array<{ process: ChildProcess; directory?: string }> = [];

afterEach(() => {
  // A failed test must not leave a server or 40 MB behind.
  for (const entry of started.splice(0)) {
    if (entry.process.exitCode === null && entry.process.signalCode === null) {
      try {
        process.kill(-entry.process.pid!, 'SIGKILL');
      } catch {
        entry.process.kill('SIGKILL');
      }
    }
    if (entry.directory) rmSync(entry.directory, { recursive: true, force: true });
  }
});

async function until<T>(read: () => T | undefined, timeoutMs: number, what: string, output: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const since = Date.now();
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      return resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
    child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - since }));
  });
}

/** The demo on a throwaway cluster, listening; returns the cluster's directory from its log. */
async function startThrowaway(options: { port?: number } = {}) {
  const demo = await launchDemo({ DATABASE_URL: '' }, { detached: true, ...options });
  const entry: { process: ChildProcess; directory?: string } = { process: demo.process };
  started.push(entry);
  const directory = await until(
    () => /Embedded PostgreSQL in (\S+)/.exec(demo.output())?.[1],
    60_000,
    'the cluster directory',
    demo.output,
  );
  entry.directory = directory;
  return { ...demo, directory };
}

async function listening(demo: { output(): string; process: ChildProcess }): Promise<void> {
  await until(
    () => (demo.output().includes('on http://localhost') ? true : undefined),
    60_000,
    'listening',
    demo.output,
  );
}

describe('the demo removes its throwaway PostgreSQL when it stops', () => {
  it('Ctrl-C (SIGINT to the process group, PostgreSQL included): exits 0 and the directory is gone', async () => {
    const demo = await startThrowaway();
    await listening(demo);
    expect(existsSync(demo.directory)).toBe(true);
    expect((await fetch(`${demo.url}/health`)).status).toBe(200);

    const exit = exited(demo.process);
    process.kill(-demo.process.pid!, 'SIGINT');
    const { code, ms } = await exit;
    expect({ code, output: code === 0 ? '' : demo.output() }).toEqual({ code: 0, output: '' });
    expect(ms).toBeLessThan(STOP_BOUND_MS);
    expect(existsSync(demo.directory)).toBe(false);
  }, 90_000);

  it('SIGTERM to the process alone (docker stop, systemd): exits 0 and the directory is gone', async () => {
    const demo = await startThrowaway();
    await listening(demo);

    const exit = exited(demo.process);
    demo.process.kill('SIGTERM');
    const { code, ms } = await exit;
    expect({ code, output: code === 0 ? '' : demo.output() }).toEqual({ code: 0, output: '' });
    expect(ms).toBeLessThan(STOP_BOUND_MS);
    expect(existsSync(demo.directory)).toBe(false);
  }, 90_000);

  it('a second SIGINT while stopping stops at once (exit 130) and still removes the directory', async () => {
    const demo = await startThrowaway();
    await listening(demo);

    const exit = exited(demo.process);
    // Straight from the output event, not a poll: a clean stop can take as little as ~250 ms.
    const onOutput = (chunk: Buffer) => {
      if (!chunk.toString().includes('SIGINT: shutting down')) return;
      demo.process.stdout!.off('data', onOutput);
      demo.process.kill('SIGINT');
    };
    demo.process.stdout!.on('data', onOutput);
    demo.process.kill('SIGINT');
    const { code, ms } = await exit;
    expect(demo.output()).toContain('SIGINT again: stopping now');
    expect(code).toBe(130);
    expect(ms).toBeLessThan(STOP_BOUND_MS);
    expect(existsSync(demo.directory)).toBe(false);
  }, 90_000);

  it('SIGTERM during start-up (the cluster up, the app not yet listening): exits 0 and the directory is gone', async () => {
    const demo = await startThrowaway();
    const exit = exited(demo.process);
    demo.process.kill('SIGTERM');
    const { code, ms } = await exit;
    expect({ code, output: code === 0 ? '' : demo.output() }).toEqual({ code: 0, output: '' });
    expect(demo.output()).not.toContain('on http://localhost');
    expect(ms).toBeLessThan(STOP_BOUND_MS);
    expect(existsSync(demo.directory)).toBe(false);
  }, 90_000);

  it('a start that fails after the cluster is up (the port is taken): exits 1 and the directory is gone', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const demo = await startThrowaway({ port });
      const { code, ms } = await exited(demo.process);
      expect(demo.output()).toContain('EADDRINUSE');
      expect(code).toBe(1);
      expect(ms).toBeLessThan(60_000);
      expect(existsSync(demo.directory)).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 90_000);
});
