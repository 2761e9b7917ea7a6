/**
 * Security of the proxy's front door, with the real docker CLI: browser requests refused, Host
 * names checked, TLS with client certificates (docker's --tlsverify conventions; certificates made
 * by openssl for this run), and a unix-socket listener that copies the daemon socket's permissions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, statSync, chmodSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { startStack, Stack, docker, portOf, rawExchange, uniq, TEST_TIMEOUT_MS } from './helpers.js';
import { startProxy, RunningProxy } from '../../proxy/server.js';
import { ProxyConfigError } from '../../proxy/errors.js';
import { createLogger } from '../../src/log.js';

let s: Stack;
let work: string;
const quiet = createLogger({ level: 'error' });

before(async () => {
  s = await startStack();
  work = mkdtempSync(join(tmpdir(), 'proxy-sec-'));
});
after(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA, a server cert for 127.0.0.1 and a client cert, P-256 keys, valid for a day. */
function makePki(dir: string, ca: string): void {
  mkdirSync(dir, { recursive: true });
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir);
  key('ca-key.pem');
  openssl(['req', '-x509', '-new', '-key', 'ca-key.pem', '-days', '1', '-subj', `/CN=${ca}`, '-out', 'ca.pem'], dir);
  for (const [name, cn, ext] of [
    ['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'],
    ['client', 'proxy-test-client', 'extendedKeyUsage=clientAuth\n'],
  ]) {
    key(`${name}-key.pem`);
    openssl(['req', '-new', '-key', `${name}-key.pem`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}-cert.pem`], dir);
  }
}

async function withProxy<T>(opts: Parameters<typeof startProxy>[0], fn: (p: RunningProxy) => Promise<T>): Promise<T> {
  const p = await startProxy({ logger: quiet, dockerSocket: s.dockerd.socket, ...opts });
  try { return await fn(p); } finally { await p.close(); }
}

test('requests carrying browser headers get 403 with a message the CLI prints', { timeout: TEST_TIMEOUT_MS }, async () => {
  const cfg = join(work, 'browser-cli');
  mkdirSync(cfg);
  // The CLI adds config.json HttpHeaders to every request: stands in for a browser's Origin.
  writeFileSync(join(cfg, 'config.json'), JSON.stringify({ HttpHeaders: { Origin: 'http://evil.example' } }));
  const viaProxy = await docker({ ...s.proxied, DOCKER_CONFIG: cfg }, ['ps']);
  assert.notEqual(viaProxy.status, 0);
  assert.match(viaProxy.stderr, /Error response from daemon: the Calico Docker API proxy refuses requests from web browsers \(this one carries origin\)/);
  assert.equal((await docker({ ...s.direct, DOCKER_CONFIG: cfg }, ['ps'])).status, 0, 'the daemon itself does not check');

  const port = portOf(s.proxy.address);
  const fetchLike = await rawExchange({ port }, 'POST /v1.41/containers/create HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  assert.match(fetchLike.toString(), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*Content-Type: application\/json[\s\S]*sec-fetch-site, sec-fetch-mode/);
  const upgrade = await rawExchange({ port }, 'POST /v1.41/exec/x/start HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  assert.match(upgrade.toString(), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*refuses requests from web browsers/);
});

test('Host names other than IP literals and localhost are refused (DNS rebinding)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = portOf(s.proxy.address);
  const ask = (host: string) => rawExchange({ port }, `GET /_ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  assert.match((await ask('rebind.evil.example:2377')).toString(), /^HTTP\/1\.1 403 Forbidden[\s\S]*refuses Host \\"rebind\.evil\.example:2377\\"/);
  assert.match((await ask(`localhost:${port}`)).toString(), /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nOK$/);
  const viaLocalhost = await docker({ ...s.direct, DOCKER_HOST: `tcp://localhost:${port}` }, ['version', '--format', '{{.Server.APIVersion}}']);
  assert.deepEqual([viaLocalhost.status, viaLocalhost.stdout], [0, '1.41\n']);
  await withProxy({ proxyListen: '127.0.0.1:0', allowedHostNames: ['docker.test.internal'] }, async (p) => {
    const ok = await rawExchange({ port: portOf(p.address) }, 'GET /_ping HTTP/1.1\r\nHost: docker.test.internal\r\nConnection: close\r\n\r\n');
    assert.match(ok.toString(), /^HTTP\/1\.1 200 OK/);
  });
});

test('tlsverify: clients need a certificate from the CA; hijacks and half-close work over TLS', { timeout: TEST_TIMEOUT_MS }, async () => {
  const pki = join(work, 'pki');
  const other = join(work, 'other-pki');
  makePki(pki, 'proxy-test-ca');
  makePki(other, 'some-other-ca');
  await withProxy({
    proxyListen: '127.0.0.1:0', tlsverify: true,
    tlscacert: join(pki, 'ca.pem'), tlscert: join(pki, 'server-cert.pem'), tlskey: join(pki, 'server-key.pem'),
  }, async (p) => {
    const base = { ...s.direct, DOCKER_HOST: p.dockerHost };
    const tlsArgs = (dir: string) => ['--tlsverify', '--tlscacert', join(pki, 'ca.pem'), '--tlscert', join(dir, 'client-cert.pem'), '--tlskey', join(dir, 'client-key.pem')];
    const good = tlsArgs(pki);

    const ps = await docker(base, [...good, 'ps', '--format', '{{.ID}}']);
    assert.equal(ps.status, 0, ps.stderr);
    const runOut = await docker(base, [...good, 'run', '--rm', 'busybox', 'sh', '-c', 'echo over-tls; exit 4']);
    assert.deepEqual([runOut.status, runOut.stdout], [4, 'over-tls\n']);
    const name = uniq('tls');
    assert.equal((await docker(base, [...good, 'run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
    // No -i: the CLI half-closes the TLS connection at once and still needs all the output.
    const ex = await docker(base, [...good, 'exec', name, 'sh', '-c', 'seq 1 20000 | tail -1; exit 2']);
    assert.deepEqual([ex.status, ex.stdout], [2, '20000\n']);
    const exi = await docker(base, [...good, 'exec', '-i', name, 'wc', '-c'], { input: 'y'.repeat(50000) });
    assert.deepEqual([exi.status, exi.stdout.trim()], [0, '50000']);

    const noCert = await docker(base, ['--tlsverify', '--tlscacert', join(pki, 'ca.pem'), 'ps']);
    assert.notEqual(noCert.status, 0);
    assert.match(noCert.stderr, /certificate required|bad certificate|handshake failure/);
    const wrongCaPs = await docker(base, [...tlsArgs(other), 'ps']);
    assert.notEqual(wrongCaPs.status, 0);
    assert.match(wrongCaPs.stderr, /unknown certificate authority|bad certificate|certificate/);
    const plain = await docker({ ...base, DOCKER_HOST: `tcp://${p.address}` }, ['ps']);
    assert.notEqual(plain.status, 0, 'plain HTTP to a TLS port fails');
  });
  // --tls without verify: server TLS only; a client without a certificate is served.
  await withProxy({
    proxyListen: '127.0.0.1:0', tls: true, tlscert: join(pki, 'server-cert.pem'), tlskey: join(pki, 'server-key.pem'),
  }, async (p) => {
    const r = await docker({ ...s.direct, DOCKER_HOST: p.dockerHost }, ['--tlsverify', '--tlscacert', join(pki, 'ca.pem'), 'version', '--format', '{{.Server.APIVersion}}']);
    assert.deepEqual([r.status, r.stdout], [0, '1.41\n']);
  });
});

test('a unix-socket listener gets the daemon socket\'s owner, group and mode', { timeout: TEST_TIMEOUT_MS }, async () => {
  chmodSync(s.dockerd.socket, 0o640);
  chownSync(s.dockerd.socket, 0, 4321);
  const path = join(work, 'proxy.sock');
  // A stale socket file from a crashed run is replaced.
  const stale = net.createServer().listen(path);
  await new Promise((r) => stale.once('listening', r));
  await new Promise((r) => stale.close(r));
  writeFileSync(join(work, 'not-a-socket'), 'x');
  await withProxy({ proxyListen: `unix://${path}` }, async (p) => {
    assert.equal(p.dockerHost, `unix://${path}`);
    const st = statSync(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.gid, 4321);
    assert.equal(st.uid, 0);
    const r = await docker({ ...s.direct, DOCKER_HOST: p.dockerHost }, ['run', '--rm', 'busybox', 'echo', 'via-unix']);
    assert.deepEqual([r.status, r.stdout], [0, 'via-unix\n']);
    // Older CLIs send Host "docker" on unix sockets; browsers cannot reach one, so no Host check.
    const old = await rawExchange({ path }, 'GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
    assert.match(old.toString(), /^HTTP\/1\.1 200 OK/);
    await assert.rejects(startProxy({ proxyListen: path, dockerSocket: s.dockerd.socket, logger: quiet }), /already listening/);
  });
  await assert.rejects(startProxy({ proxyListen: join(work, 'not-a-socket'), dockerSocket: s.dockerd.socket, logger: quiet }), /not a socket/);
  chmodSync(s.dockerd.socket, 0o660);
});

test('listening beyond loopback without tlsverify is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  await assert.rejects(startProxy({ proxyListen: '0.0.0.0:0', dockerSocket: s.dockerd.socket, logger: quiet }), ProxyConfigError);
});
