// `npm test`'s first stage: the build, the type checks, lint and format, and the API reports,
// two at a time (os.availableParallelism(), at least 2): each is one single-threaded process,
// so run one after the other they leave a CI core idle. The commands are package.json's own
// scripts, split on `&&`; only the build's parts (rm, then tsc) and the API reports (they read
// dist/) wait for what they need. Each step's output is printed whole when it ends.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const parts = (script) => scripts[script].split(' && ').map((command) => command.trim());

// Longest first, so the last step to start is a short one; the build early, as the API reports wait for it.
const [typecheckSpecs, ...typecheckOthers] = parts('typecheck');
const steps = [
  { command: typecheckSpecs },
  { command: scripts.build },
  ...parts('lint').map((command) => ({ command })),
  ...typecheckOthers.map((command) => ({ command })),
  ...parts('api').map((command) => ({ command, after: scripts.build })),
];
const env = { ...process.env, PATH: [join(ROOT, 'node_modules/.bin'), process.env.PATH].join(delimiter) };
const limit = Math.max(2, Number(process.env.STATIC_CHECKS_JOBS) || availableParallelism());

function run(step) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('sh', ['-c', step.command], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (code, signal) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`[static] ${code === 0 ? 'ok  ' : 'FAIL'} ${step.command} (${seconds} s)`);
      process.stdout.write(output);
      resolve(code === 0 ? 'ok' : `exit ${code ?? signal}`);
    });
  });
}

const started = Date.now();
const results = new Map(); // command -> Promise of 'ok' or the failure
const waiting = [...steps];
let running = 0;
let failed = false;
await new Promise((done) => {
  const next = () => {
    while (running < limit) {
      const index = waiting.findIndex((step) => !step.after || results.get(step.after)?.settled);
      if (index < 0) break;
      const [step] = waiting.splice(index, 1);
      if (step.after && results.get(step.after).value !== 'ok') {
        console.log(`[static] skip ${step.command} (${step.after} failed)`);
        failed = true;
        continue;
      }
      running++;
      const entry = { settled: false, value: undefined };
      results.set(step.command, entry);
      run(step).then((value) => {
        Object.assign(entry, { settled: true, value });
        if (value !== 'ok') failed = true;
        running--;
        next();
      });
    }
    if (!waiting.length && !running) done();
  };
  next();
});
console.log(`[static] ${failed ? 'FAILED' : 'all passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
