/**
 * Interactive use under a pseudo-terminal (util-linux `script` provides the pty): `run -it`,
 * `exec -it`, `run -t`, direct and through the proxy. Typed input is echoed by the container's
 * tty at a moment that depends on scheduling, so interactive sessions are compared by what the
 * shell computed (which only appears if it ran the input), not byte for byte.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, Stack, run, docker, uniq, TEST_TIMEOUT_MS } from './helpers.js';

let s: Stack;
before(async () => { s = await startStack(); });
after(async () => { await s?.stop(); });

/** Runs a docker command line inside `script`, i.e. with a pty as stdin/stdout. */
function underPty(env: NodeJS.ProcessEnv, commandLine: string, input = ''): ReturnType<typeof run> {
  return run('script', ['-qec', commandLine, '/dev/null'], env, { input });
}

test('run -t without -i: tty output and CRLF line endings are identical', { timeout: TEST_TIMEOUT_MS }, async () => {
  const cmd = "docker run -t --rm busybox sh -c 'tty; echo hi; exit 3'";
  const d = await underPty(s.direct, cmd);
  const p = await underPty(s.proxied, cmd);
  assert.deepEqual(p, d);
  assert.equal(d.status, 3);
  assert.match(d.stdout, /\/dev\/pts\/0\r\r?\nhi\r\r?\n/);
});

test('run -it: an interactive shell runs typed commands and exits with their code', { timeout: TEST_TIMEOUT_MS }, async () => {
  const input = 'echo hello-$((6*7))\nexit 7\n';
  for (const env of [s.direct, s.proxied]) {
    const r = await underPty(env, 'docker run -it --rm busybox sh', input);
    assert.equal(r.status, 7, r.stdout);
    assert.match(r.stdout, /\r\nhello-42\r\n/);
    assert.match(r.stdout, /BusyBox v[\d.]+ .* built-in shell/);
  }
});

test('exec -it: an interactive shell in a running container', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('tty');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
  for (const env of [s.direct, s.proxied]) {
    const r = await underPty(env, `docker exec -it ${name} sh`, 'echo exec-$((2+3)); tty\nexit 3\n');
    assert.equal(r.status, 3, r.stdout);
    assert.match(r.stdout, /\r\nexec-5\r\n\/dev\/pts\/\d+\r\n/);
  }
  const cmd = `docker exec -t ${name} sh -c 'echo plain; exit 4'`;
  const d = await underPty(s.direct, cmd);
  const p = await underPty(s.proxied, cmd);
  assert.deepEqual(p, d);
  assert.equal(d.status, 4);
});
