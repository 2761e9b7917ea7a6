/**
 * The real docker CLI, once against the daemon's socket and once through the proxy: output and
 * exit codes must be the same for every command (no interceptors here: pure pass-through).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { startStack, Stack, docker, CliResult, uniq, portOf, TEST_TIMEOUT_MS } from './helpers.js';

let s: Stack;
let work: string;
const label = uniq('pt');

before(async () => {
  s = await startStack();
  work = mkdtempSync(join(tmpdir(), 'proxy-cli-'));
});
after(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

type Mode = 'direct' | 'proxied';
const MODES: Mode[] = ['direct', 'proxied'];
const envOf = (m: Mode): NodeJS.ProcessEnv => (m === 'direct' ? s.direct : s.proxied);

/** Runs the same command both ways, one after the other, and asserts identical results. */
async function same(args: string[], opts: Parameters<typeof docker>[2] = {}): Promise<CliResult> {
  const d = await docker(s.direct, args, opts);
  const p = await docker(s.proxied, args, opts);
  assert.deepEqual(p, d, `docker ${args.join(' ')}: proxied result differs from direct`);
  return p;
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

test('version: the daemon is reached and the API version negotiated the same way', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await same(['version', '--format', '{{json .Server}}']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /"ApiVersion":"1\.41"/);
});

test('run attached without a TTY: stdout, stderr and exit code', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await same(['run', '--rm', '--label', label, 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.status, 3);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
});

test('run -i with piped stdin: input reaches the container, EOF ends it', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await same(['run', '-i', '--rm', '--label', label, 'busybox', 'sh', '-c', 'cat; echo done; exit 2'], { input: 'line1\nline2\n' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, 'line1\nline2\ndone\n');
});

test('run: 1.3 MB of output arrives intact', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await same(['run', '--rm', '--label', label, 'busybox', 'seq', '1', '200000']);
  assert.equal(r.status, 0);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 200001);
  assert.equal(lines[199999], '200000');
});

test('run -d prints the id and returns while the container runs; --rm removes it', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const m of MODES) {
    const name = uniq(`bg-${m}`);
    const r = await docker(envOf(m), ['run', '-d', '--name', name, '--label', label, 'busybox', 'sleep', '600']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal(r.stderr, '');
    const running = await docker(s.direct, ['inspect', '-f', '{{.State.Running}} {{.Id}}', name]);
    assert.equal(running.stdout, `true ${r.stdout.trim()}\n`);

    const gone = uniq(`rm-${m}`);
    const rr = await docker(envOf(m), ['run', '--rm', '--name', gone, 'busybox', 'echo', 'bye']);
    assert.deepEqual([rr.status, rr.stdout, rr.stderr], [0, 'bye\n', '']);
    const left = await docker(s.direct, ['ps', '-aq', '--filter', `name=${gone}`]);
    assert.equal(left.stdout, '', `--rm container ${gone} still there (${m})`);
  }
});

test('exec without -i (client half-closes at once) and with -i', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('exec');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', name, '--label', label, 'busybox', 'sleep', '600'])).status, 0);
  const r1 = await same(['exec', name, 'sh', '-c', 'echo from-exec; ls / | head -3; echo e >&2; exit 5']);
  assert.deepEqual([r1.status, r1.stdout, r1.stderr], [5, 'from-exec\nbin\ndev\netc\n', 'e\n']);
  const r2 = await same(['exec', '-i', name, 'sh', '-c', 'wc -c; exit 6'], { input: 'x'.repeat(100000) });
  assert.equal(r2.status, 6);
  assert.equal(r2.stdout.trim(), '100000');
  // The daemon ends first (exec done) while the CLI's stdin is still open: the daemon's FIN must
  // reach the CLI or it waits forever.
  const r4 = await same(['exec', '-i', name, 'sh', '-c', 'echo early; exit 8'], { input: 'unread\n', keepStdinOpen: true });
  assert.deepEqual([r4.status, r4.stdout], [8, 'early\n']);
  const r3 = await same(['exec', '-d', name, 'sh', '-c', 'echo detached > /tmp/d']);
  assert.equal(r3.status, 0);
});

test('attach relays stdin, output and the container exit code', { timeout: TEST_TIMEOUT_MS }, async () => {
  const results: CliResult[] = [];
  for (const m of MODES) {
    const name = uniq(`att-${m}`);
    // `create -i` sets StdinOnce: the attach's stdin EOF closes the container's stdin, not the
    // attach's output (with `run -di` the daemon would cut the output at stdin EOF).
    assert.equal((await docker(s.direct, ['create', '-i', '--name', name, '--label', label, 'busybox', 'sh', '-c', 'read l; echo got:$l; echo err:$l >&2; exit 4'])).status, 0);
    assert.equal((await docker(s.direct, ['start', name])).status, 0);
    results.push(await docker(envOf(m), ['attach', name], { input: 'hello\n' }));
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[0], { status: 4, stdout: 'got:hello\n', stderr: 'err:hello\n' });
});

test('start -ai: attach before start, stdin, output, exit code', { timeout: TEST_TIMEOUT_MS }, async () => {
  const results: CliResult[] = [];
  for (const m of MODES) {
    const name = uniq(`sai-${m}`);
    assert.equal((await docker(s.direct, ['create', '-i', '--name', name, '--label', label, 'busybox', 'sh', '-c', 'cat; echo end >&2; exit 9'])).status, 0);
    results.push(await docker(envOf(m), ['start', '-ai', name], { input: 'abc\n' }));
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[0], { status: 9, stdout: 'abc\n', stderr: 'end\n' });
});

test('logs -f follows a running container until it exits', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('logs');
  const start = await docker(s.direct, ['run', '-d', '--name', name, '--label', label, 'busybox', 'sh', '-c', 'echo a; echo b >&2; sleep 2; echo c; echo d >&2']);
  assert.equal(start.status, 0);
  const [d, p] = await Promise.all([docker(s.direct, ['logs', '-f', name]), docker(s.proxied, ['logs', '-f', name])]);
  assert.deepEqual(p, d);
  assert.deepEqual(d, { status: 0, stdout: 'a\nc\n', stderr: 'b\nd\n' });
  await same(['logs', '--timestamps', '--tail', '2', name]);
});

test('events --since/--until give the same events', { timeout: TEST_TIMEOUT_MS }, async () => {
  const evLabel = uniq('ev');
  const since = Math.floor(Date.now() / 1000) - 1;
  const name = uniq('evc');
  assert.equal((await docker(s.direct, ['run', '--rm', '--name', name, '--label', evLabel, 'busybox', 'true'])).status, 0);
  const until = Math.floor(Date.now() / 1000) + 1;
  // Let the window close so both reads see all of it (this waits; it asserts nothing about time).
  while (Date.now() / 1000 <= until + 0.2) await new Promise((r) => setTimeout(r, 100));
  const r = await same(['events', '--since', String(since), '--until', String(until), '--filter', `label=${evLabel}`]);
  assert.equal(r.status, 0);
  for (const action of ['create', 'start', 'die', 'destroy']) assert.match(r.stdout, new RegExp(`container ${action} `), action);
});

test('events without --until: each event arrives while the stream stays open', { timeout: TEST_TIMEOUT_MS }, async () => {
  const evLabel = uniq('live');
  const cli = spawn('docker', ['events', '--filter', `label=${evLabel}`, '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { env: s.proxied });
  let out = '';
  const waiters = new Set<() => void>();
  cli.stdout.on('data', (d: Buffer) => { out += d.toString(); for (const w of waiters) w(); });
  const seen = (text: string) => new Promise<void>((resolve, reject) => {
    const check = (): void => { if (out.includes(text)) { waiters.delete(check); resolve(); } };
    waiters.add(check);
    cli.once('exit', (code) => reject(new Error(`docker events exited (${code}) before "${text}": ${out}`)));
    check();
  });
  try {
    // The CLI prints nothing until an event: wait for its request to reach the daemon by
    // creating containers until the first event shows (no sleep-and-hope).
    const name = uniq('live-c');
    const first = seen(`create ${name}`);
    for (let i = 0; i < 100 && !out.includes(`create ${name}`); i++) {
      await docker(s.direct, ['rm', '-f', name]);
      await docker(s.direct, ['create', '--name', name, '--label', evLabel, 'busybox', 'true']);
      await Promise.race([first, new Promise((r) => setTimeout(r, 200))]);
    }
    await first;
    const second = uniq('live-d');
    const next = seen(`create ${second}`);
    await docker(s.direct, ['create', '--name', second, '--label', evLabel, 'busybox', 'true']);
    await next;
  } finally {
    cli.kill('SIGTERM');
  }
});

test('cp in both directions, 5 MB file and a directory', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('cp');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', name, '--label', label, 'busybox', 'sleep', '600'])).status, 0);
  const src = join(work, 'big.bin');
  const content = randomBytes(5 * 1024 * 1024);
  writeFileSync(src, content);
  const into = await same(['cp', src, `${name}:/tmp/big.bin`]);
  assert.equal(into.status, 0, into.stderr);
  for (const m of MODES) {
    const dir = join(work, `out-${m}`);
    mkdirSync(dir);
    const r = await docker(envOf(m), ['cp', `${name}:/tmp/big.bin`, '.'], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha(readFileSync(join(dir, 'big.bin'))), sha(content), `content copied out (${m})`);
  }
  const inside = await docker(s.direct, ['exec', name, 'md5sum', '/tmp/big.bin']);
  assert.equal(inside.stdout.split(' ')[0], createHash('md5').update(content).digest('hex'));
  // A directory, and the stat HEAD request for a missing path.
  const r = await same(['cp', `${name}:/etc`, join(work, 'etc-copy')]);
  assert.equal(r.status, 0);
  const missing = await same(['cp', `${name}:/no/such/path`, work]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /Could not find the file \/no\/such\/path/);
});

test('ps, inspect, stats --no-stream read the same', { timeout: TEST_TIMEOUT_MS }, async () => {
  const fmt = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t{{.Ports}}\t{{.State}}\t{{.Labels}}';
  const ps = await same(['ps', '-a', '--no-trunc', '--format', fmt, '--filter', `label=${label}`]);
  assert.equal(ps.status, 0);
  assert.ok(ps.stdout.split('\n').length > 3);
  const header = await same(['ps', '--filter', 'label=none-such']);
  assert.match(header.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\n$/);
  const name = uniq('insp');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', name, '--label', label, 'busybox', 'sleep', '600'])).status, 0);
  const insp = await same(['inspect', name]);
  assert.equal((JSON.parse(insp.stdout) as { Name: string }[])[0].Name, `/${name}`);
  await same(['image', 'inspect', 'busybox']);
  const stats = await same(['stats', '--no-stream', '--format', '{{.ID}} {{.Name}} {{.PIDs}}', name]);
  assert.match(stats.stdout, new RegExp(`^[0-9a-f]{12} ${name} 1\\n$`));
  // The default table: numbers move between two reads, the header and the names do not.
  const [d, p] = [await docker(s.direct, ['stats', '--no-stream', name]), await docker(s.proxied, ['stats', '--no-stream', name])];
  assert.equal(p.status, 0);
  assert.equal(p.stdout.split('\n')[0], d.stdout.split('\n')[0]);
  assert.equal(p.stdout.split(/\s+/)[9], d.stdout.split(/\s+/)[9]);
});

test('rm -f prints the same and removes the container', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const m of MODES) {
    const name = uniq(`rmf-${m}`);
    assert.equal((await docker(s.direct, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
    const r = await docker(envOf(m), ['rm', '-f', name]);
    assert.deepEqual(r, { status: 0, stdout: `${name}\n`, stderr: '' });
    assert.equal((await docker(s.direct, ['ps', '-aq', '--filter', `name=${name}`])).stdout, '');
  }
});

test('daemon errors read the same: unknown image (with the pull attempt), unknown container', { timeout: TEST_TIMEOUT_MS }, async () => {
  const pull = await same(['run', 'nosuchimage-calico-test']);
  assert.equal(pull.status, 125);
  assert.match(pull.stderr, /Unable to find image 'nosuchimage-calico-test:latest' locally/);
  const never = await same(['run', '--pull=never', 'nosuchimage-calico-test']);
  assert.equal(never.status, 125);
  assert.match(never.stderr, /^docker: Error response from daemon: No such image: nosuchimage-calico-test:latest/);
  for (const args of [['rm', 'no-such-ctr'], ['exec', 'no-such-ctr', 'ls'], ['logs', 'no-such-ctr'], ['start', 'no-such-ctr'], ['inspect', 'no-such-ctr']]) {
    const r = await same(args);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /No such (container|object): no-such-ctr/);
  }
});

test('wait: the daemon\'s response headers reach the client before the container exits', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('wait');
  assert.equal((await docker(s.direct, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: portOf(s.proxy.address), method: 'POST', path: `/v1.41/containers/${name}/wait?condition=next-exit` }, resolve);
    req.on('error', reject);
    req.end();
  });
  // Headers are here and the container is still running: nothing was held back.
  assert.equal(res.statusCode, 200);
  assert.equal((await docker(s.direct, ['inspect', '-f', '{{.State.Running}}', name])).stdout, 'true\n');
  const body = new Promise<string>((resolve) => { let b = ''; res.on('data', (c: Buffer) => { b += c.toString(); }); res.on('end', () => resolve(b)); });
  assert.equal((await docker(s.direct, ['kill', name])).status, 0);
  assert.deepEqual(JSON.parse(await body), { Error: null, StatusCode: 137 });
});
