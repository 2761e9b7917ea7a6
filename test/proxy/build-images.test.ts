/**
 * Builds and images through the proxy: the legacy builder (chunked tar upload, JSON progress
 * stream), BuildKit's h2c hijacks (/grpc with us as gRPC client, /session with the daemon as
 * client and repeated method headers), and `save`/`load` of a 200 MB image.
 *
 * This machine's docker CLI has no buildx plugin, so `DOCKER_BUILDKIT=1 docker build` stops in the
 * CLI (the same way both ways, checked below); the BuildKit wire protocol is driven directly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, createReadStream, openSync, closeSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { startStack, Stack, docker, run, uniq, portOf, TEST_TIMEOUT_MS } from './helpers.js';
import { upgradeH2c, grpcCall, serveSession } from './h2c.js';

let s: Stack;
let work: string;
before(async () => {
  s = await startStack();
  work = mkdtempSync(join(tmpdir(), 'proxy-build-'));
});
after(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const normaliseIds = (text: string): string => text.replace(/\b[0-9a-f]{12}\b/g, '<id>');

function fileSha(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

test('legacy builder (DOCKER_BUILDKIT=0): 10 MB context, RUN and COPY, same output both ways', { timeout: TEST_TIMEOUT_MS }, async () => {
  const ctx = join(work, 'ctx');
  mkdirSync(ctx);
  const payload = randomBytes(10 * 1024 * 1024);
  writeFileSync(join(ctx, 'payload.bin'), payload);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo built-by-run > /built\nCOPY payload.bin /payload.bin\nCMD ["sh"]\n');
  const env = { DOCKER_BUILDKIT: '0' };
  const tagD = uniq('built-direct');
  const tagP = uniq('built-proxied');
  const d = await docker(s.direct, ['build', '--no-cache', '-t', tagD, ctx], { env });
  const p = await docker(s.proxied, ['build', '--no-cache', '-t', tagP, ctx], { env });
  assert.equal(d.status, 0, d.stderr);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(normaliseIds(p.stdout).replace(tagP, 'TAG'), normaliseIds(d.stdout).replace(tagD, 'TAG'));
  assert.equal(p.stderr, d.stderr);
  assert.match(p.stdout, /Step 3\/4 : COPY payload.bin \/payload.bin/);
  const check = await docker(s.proxied, ['run', '--rm', tagP, 'sh', '-c', 'cat /built; sha256sum /payload.bin']);
  assert.equal(check.stdout, `built-by-run\n${createHash('sha256').update(payload).digest('hex')}  /payload.bin\n`);
});

test('DOCKER_BUILDKIT=1 without buildx fails in the CLI the same way', { timeout: TEST_TIMEOUT_MS }, async () => {
  const ctx = join(work, 'ctx-bk');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\n');
  const env = { DOCKER_BUILDKIT: '1' };
  const d = await docker(s.direct, ['build', ctx], { env });
  const p = await docker(s.proxied, ['build', ctx], { env });
  assert.deepEqual(p, d);
});

test('BuildKit /grpc (h2c upgrade): 101 from the daemon and the same ListWorkers answer', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = portOf(s.proxy.address);
  const direct = await upgradeH2c({ path: s.dockerd.socket }, '/grpc');
  const proxied = await upgradeH2c({ port }, '/grpc');
  assert.equal(proxied.head, direct.head);
  assert.match(proxied.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  const d = await grpcCall(direct, '/moby.buildkit.v1.Control/ListWorkers', Buffer.alloc(0));
  const p = await grpcCall(proxied, '/moby.buildkit.v1.Control/ListWorkers', Buffer.alloc(0));
  assert.equal(p.status, '0');
  assert.ok(p.body.length > 5);
  assert.deepEqual(p.body, d.body);
});

test('BuildKit /session: repeated method headers reach the daemon as separate lines', { timeout: TEST_TIMEOUT_MS }, async () => {
  // The daemon registers one supported method per X-Docker-Expose-Session-Grpc-Method line. A
  // build that needs the client's files calls FileSync/DiffCopy on the session only if that
  // method was registered (merged into one line it answers "no local sources enabled").
  const sessionId = uniq('sess');
  const methods = ['/grpc.health.v1.Health/Check', '/moby.filesync.v1.FileSync/DiffCopy', '/moby.filesync.v1.FileSync/TarStream'];
  const up = await upgradeH2c({ port: portOf(s.proxy.address) }, '/session', [
    `X-Docker-Expose-Session-Uuid: ${sessionId}`,
    'X-Docker-Expose-Session-Name: proxy-test',
    'X-Docker-Expose-Session-Sharedkey: proxy-test',
    ...methods.map((m) => `X-Docker-Expose-Session-Grpc-Method: ${m}`),
  ]);
  assert.match(up.head, /^HTTP\/1\.1 101 /);
  const session = serveSession(up, (path) => path.startsWith('/moby.filesync'));
  try {
    const build = new Promise<string>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: portOf(s.proxy.address), method: 'POST',
        path: `/v1.41/build?version=2&session=${sessionId}&remote=client-session&dockerfile=Dockerfile&buildid=${sessionId}`,
        headers: { 'Content-Type': 'application/x-tar' },
      }, (res) => { let b = ''; res.on('data', (c: Buffer) => { b += c.toString(); }); res.on('end', () => resolve(b)); });
      req.on('error', reject);
      req.end();
    });
    // Whichever comes first: the daemon calling us, or the build ending without having called.
    const outcome = await Promise.race([
      session.firstCall.then((c) => ({ call: c, buildOutput: '' })),
      build.then((b) => ({ call: undefined, buildOutput: b })),
    ]);
    const call = outcome.call;
    assert.ok(call, `the daemon never called the session's FileSync; build answered: ${outcome.buildOutput.slice(0, 500)}`);
    assert.equal(call.path, '/moby.filesync.v1.FileSync/DiffCopy');
    assert.equal(call.headers['dir-name'], 'dockerfile');
    session.close();
    await build; // it fails (our test server sends no files); it must just finish
  } finally {
    session.close();
  }
});

test('save and load a 200 MB image: identical tar, identical messages, streamed', { timeout: TEST_TIMEOUT_MS }, async () => {
  const rootfs = join(work, 'bigfs');
  mkdirSync(rootfs);
  const fd = openSync(join(rootfs, 'big.bin'), 'w');
  for (let i = 0; i < 200; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  const image = `${uniq('big')}:latest`;
  const imp = await run('sh', ['-c', `tar -C ${rootfs} -cf - . | docker import - ${image}`], s.direct);
  assert.equal(imp.status, 0, imp.stderr);
  rmSync(rootfs, { recursive: true, force: true });

  const rssBefore = process.memoryUsage().rss;
  const d = await docker(s.direct, ['save', '-o', join(work, 'direct.tar'), image]);
  const p = await docker(s.proxied, ['save', '-o', join(work, 'proxied.tar'), image]);
  assert.deepEqual(p, d);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(await fileSha(join(work, 'proxied.tar')), await fileSha(join(work, 'direct.tar')));

  const loads = [];
  for (const [env, file] of [[s.proxied, 'proxied.tar'], [s.direct, 'direct.tar']] as const) {
    assert.equal((await docker(s.direct, ['rmi', image])).status, 0);
    loads.push(await docker(env, ['load', '-i', join(work, file)]));
  }
  assert.deepEqual(loads[0], loads[1]);
  assert.deepEqual(loads[0], { status: 0, stdout: `Loaded image: ${image}\n`, stderr: '' });
  // 400 MB went through this process (the proxy runs here); it must have streamed, not buffered.
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 150 * 1024 * 1024, `proxy process grew by ${Math.round(grown / 1048576)} MB while streaming`);
});
