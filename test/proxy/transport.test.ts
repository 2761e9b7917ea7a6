/**
 * Wire-level behaviour the CLI tests cannot pin down on their own: the daemon's own 101 status
 * line reaching the client, an exec-start body that arrives after its headers, errors before a
 * hijack, no pipelining past a refused upgrade, and (against a recording stand-in daemon, for what
 * dockerd cannot report) header fidelity and cancellation of abandoned streams.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, Stack, docker, uniq, portOf, rawExchange, TEST_TIMEOUT_MS } from './helpers.js';
import { startProxy } from '../../proxy/server.js';
import { createProxyServer } from '../../proxy/listener.js';
import { createLogger } from '../../src/log.js';

let s: Stack;
let work: string;
let execTarget: string;
before(async () => {
  s = await startStack();
  work = mkdtempSync(join(tmpdir(), 'proxy-transport-'));
  execTarget = uniq('tr');
  const r = await docker(s.direct, ['run', '-d', '--name', execTarget, 'busybox', 'sleep', '600']);
  assert.equal(r.status, 0, r.stderr);
});
after(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const quiet = createLogger({ level: 'error' });

/** Reads from a socket until `pred` holds for everything read so far. */
function readUntil(sock: net.Socket, pred: (all: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let all = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      all = Buffer.concat([all, c]);
      if (pred(all)) { sock.removeListener('data', onData); resolve(all); }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('end', () => resolve(all));
  });
}

const headerBlock = (b: Buffer): string => b.subarray(0, b.indexOf('\r\n\r\n') + 4).toString('latin1');
const withoutDate = (h: string): string => h.replace(/^Date: .*\r\n/m, '');

async function execCreate(cmd: string[], stdin: boolean): Promise<string> {
  const r = await fetchJson('POST', `/v1.41/containers/${execTarget}/exec`, { AttachStdout: true, AttachStderr: true, AttachStdin: stdin, Cmd: cmd });
  return (r as { Id: string }).Id;
}

function fetchJson(method: string, path: string, body?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body ? Buffer.from(JSON.stringify(body)) : undefined;
    const headers: http.OutgoingHttpHeaders = data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {};
    const req = http.request({ socketPath: s.dockerd.socket, method, path, headers }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => resolve(b ? JSON.parse(b) : undefined));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('attach: the client gets the daemon\'s own "101 UPGRADED" header block', { timeout: TEST_TIMEOUT_MS }, async () => {
  const request = `POST /v1.41/containers/${execTarget}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n`;
  const blocks: string[] = [];
  for (const connect of [() => net.connect(s.dockerd.socket), () => net.connect(portOf(s.proxy.address), '127.0.0.1')]) {
    const sock = connect();
    sock.write(request);
    blocks.push(withoutDate(headerBlock(await readUntil(sock, (b) => b.includes('\r\n\r\n')))));
    sock.destroy();
  }
  assert.equal(blocks[1], blocks[0]);
  assert.match(blocks[0], /^HTTP\/1\.1 101 UPGRADED\r\n/);
  // API 1.41: raw-stream even without a TTY (multiplexed-stream is 1.42+).
  assert.match(blocks[0], /Content-Type: application\/vnd\.docker\.raw-stream\r\n/);
});

test('exec start whose JSON body arrives after its headers, then stdin, FIN, and all output', { timeout: TEST_TIMEOUT_MS }, async () => {
  const id = await execCreate(['sh', '-c', 'cat; echo after-eof'], true);
  const body = '{"Detach":false,"Tty":false}';
  const sock = net.connect(portOf(s.proxy.address), '127.0.0.1');
  sock.write(`POST /v1.41/exec/${id}/start HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  // The daemon reads the body before it answers 101: a proxy that waited for the 101 before
  // passing on these bytes would hang here.
  await new Promise((r) => setTimeout(r, 50));
  sock.write(body.slice(0, 10));
  await new Promise((r) => setTimeout(r, 50));
  sock.write(body.slice(10));
  const head = await readUntil(sock, (b) => b.includes('\r\n\r\n'));
  assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 UPGRADED\r\n/);
  const rest = readUntil(sock, () => false);
  sock.write('stdin-data\n');
  sock.end(); // half-close: the output must still come
  const out = Buffer.concat([head.subarray(head.indexOf('\r\n\r\n') + 4), await rest]);
  assert.equal(demux(out), 'stdin-data\nafter-eof\n');
});

test('an upgrade refused by the daemon passes through as JSON; pipelined bytes after it are dropped', { timeout: TEST_TIMEOUT_MS }, async () => {
  // The daemon answers an unknown exec id with a JSON 404 before hijacking, and keeps the
  // connection for further requests.
  const body = '{"Detach":false,"Tty":false}';
  const bad = `POST /v1.41/exec/no-such-exec/start HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const smuggled = 'GET /v1.41/containers/json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';
  const direct = await rawExchange({ path: s.dockerd.socket }, bad + smuggled);
  const proxied = await rawExchange({ port: portOf(s.proxy.address) }, bad + smuggled);
  assert.equal(withoutDate(headerBlock(proxied)), withoutDate(headerBlock(direct)));
  assert.match(proxied.toString(), /^HTTP\/1\.1 404 Not Found\r\n[\s\S]*"message":"No such exec instance: no-such-exec"/);
  assert.equal(direct.toString().split('HTTP/1.1 ').length - 1, 2, 'the daemon answers both requests');
  assert.equal(proxied.toString().split('HTTP/1.1 ').length - 1, 1, 'the proxy does not tunnel a second request');
});

test('large request headers (X-Registry-Config, build args) pass: up to 1 MiB like dockerd', { timeout: TEST_TIMEOUT_MS }, async () => {
  const big = Buffer.from(JSON.stringify({ 'registry.example': { auth: 'x'.repeat(300 * 1024) } })).toString('base64');
  const r = await rawExchange({ port: portOf(s.proxy.address) }, `GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Registry-Config: ${big}\r\nConnection: close\r\n\r\n`);
  assert.match(r.toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nOK$/);
});

test('server limits: no request timeout, no socket timeout, keep-alive beyond Go\'s 90 s idle', { timeout: TEST_TIMEOUT_MS }, () => {
  const server = createProxyServer(undefined);
  assert.equal(server.requestTimeout, 0);
  assert.equal(server.timeout, 0);
  assert.ok(server.keepAliveTimeout > 90_000);
  assert.ok(server.headersTimeout >= 60_000);
  server.close();
});

test('a daemon that cannot be reached gives a JSON error the CLI prints, on each request of a connection', { timeout: TEST_TIMEOUT_MS }, async () => {
  const proxy = await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket: join(work, 'nothing-here.sock'), logger: quiet });
  try {
    const r = await docker({ ...s.direct, DOCKER_HOST: proxy.dockerHost }, ['ps']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /cannot reach the docker daemon at .*nothing-here\.sock/);
    const two = await rawExchange({ port: portOf(proxy.address) },
      'GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /v1.41/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(two.toString().match(/^HTTP\/1\.1 502 Bad Gateway\r\n/gm)?.length, 2, two.toString());
  } finally {
    await proxy.close();
  }
});

/** A stand-in daemon on a unix socket that records what it is sent. */
async function recordingDaemon(): Promise<{ socket: string; requests: http.IncomingMessage[]; closed: Promise<string>; close(): Promise<void> }> {
  const socket = join(work, `fake-${Math.random().toString(36).slice(2)}.sock`);
  const requests: http.IncomingMessage[] = [];
  let onClosed: (path: string) => void = () => undefined;
  const closed = new Promise<string>((r) => { onClosed = r; });
  const server = http.createServer((req, res) => {
    requests.push(req);
    if (req.url?.endsWith('/events')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      req.socket.once('close', () => onClosed(req.url ?? ''));
      return; // never ends, like the daemon's event stream
    }
    // Repeated and mixed-case headers and an unusual reason phrase, as a daemon might send.
    res.writeHead(299, 'Odd Reason', ['X-Dup', 'one', 'X-Dup', 'two', 'Api-Version', '1.41', 'Content-Type', 'application/json']);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, requests, closed, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

// Both ways through the proxy: the byte relay of fast-path.ts, and Node's http server (TLS
// listeners and connections handed over use it; `fastPath: false` makes it the only one).
for (const fastPath of [true, false]) {
  test(`repeated request and response headers stay separate; status and reason pass through (fastPath: ${fastPath})`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const fake = await recordingDaemon();
    const proxy = await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket: fake.socket, logger: quiet, fastPath });
    try {
      const answer = await rawExchange({ port: portOf(proxy.address) },
        'GET /v1.41/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/jsonl\r\nAccept: application/x-ndjson;q=0.9\r\nAccept: application/json-seq;q=0.5\r\nX-Custom: a\r\nX-Custom: b\r\nContent-Length: 0\r\n\r\n'
        .replace('/v1.41/events', '/v1.41/info') + 'GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      const req = fake.requests[0];
      assert.equal(req.url, '/v1.41/info');
      assert.deepEqual(req.headersDistinct['accept'], ['application/jsonl', 'application/x-ndjson;q=0.9', 'application/json-seq;q=0.5']);
      assert.deepEqual(req.headersDistinct['x-custom'], ['a', 'b']);
      const text = answer.toString('latin1');
      assert.match(text, /^HTTP\/1\.1 299 Odd Reason\r\n/);
      assert.match(text, /\r\nX-Dup: one\r\nX-Dup: two\r\n/);
      assert.equal(fake.requests.length, 2, 'keep-alive: the second request used the same client connection');
    } finally {
      await proxy.close();
      await fake.close();
    }
  });

  test(`a client that goes away ends the daemon-side stream (Ctrl-C on events / logs -f) (fastPath: ${fastPath})`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const fake = await recordingDaemon();
    const proxy = await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket: fake.socket, logger: quiet, fastPath });
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: portOf(proxy.address), path: '/v1.41/events', agent: false }, resolve);
        req.on('error', reject);
        req.end();
      });
      assert.equal(res.statusCode, 200);
      res.destroy();
      assert.equal(await fake.closed, '/v1.41/events');
    } finally {
      await proxy.close();
      await fake.close();
    }
  });
}

/** Joins the payloads of a multiplexed (non-TTY) stream: 8-byte headers, big-endian length. */
function demux(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  return out;
}
