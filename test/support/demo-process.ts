import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../../src/demo/embedded-postgres.js';

const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;

export interface DemoProcess {
  url: string;
  process: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the built demo (`dist/src/main.js`, as `npm start` runs it) without waiting for it.
 * `detached` puts it in a process group of its own, so a test can signal the whole group as a
 * terminal's Ctrl-C does (the embedded PostgreSQL included).
 */
export async function launchDemo(
  env: Record<string, string>,
  options: { detached?: boolean; port?: number } = {},
): Promise<{ url: string; port: number; process: ChildProcess; output(): string }> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: String(port), NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { url: `http://127.0.0.1:${port}`, port, process: child, output: () => output };
}

/** The built demo in its own process, once it answers /health. */
export async function spawnDemo(env: Record<string, string>): Promise<DemoProcess> {
  const { url, process: child, output } = await launchDemo(env);
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`demo exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    // Generous: CI machines have two cores and a cold start compiles nothing but still loads Nest.
    if (Date.now() - started > 45_000) throw new Error(`demo did not start within 45 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    process: child,
    output,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

/** Logs in over plain fetch; returns the cookie header and the CSRF header to send back. */
export async function loginOver(
  url: string,
  username: string,
): Promise<{ cookie: string; sessionId: string; body: any; headers: Record<string, string> }> {
  const response = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-password` }),
  });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${await response.text()}`);
  const line = response.headers.getSetCookie().find((h) => h.startsWith('__Host-sid='))!;
  const body = await response.json();
  const cookie = line.split(';')[0];
  return { cookie, sessionId: body.sessionId, body, headers: { cookie, 'x-csrf-token': body.csrfToken } };
}
