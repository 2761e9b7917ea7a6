/**
 * The fast path (proxy/fast-path.ts) on the wire, against a scripted stand-in daemon that records
 * the raw bytes of every connection: requests and answers pass byte for byte (chunk boundaries,
 * extensions and trailers included, which Node's http client and server would rewrite),
 * pipelined requests, the hand-over to Node's http server (after the earlier answers, never
 * interleaved), heads split across reads, request smuggling attempts, half-close both ways,
 * answers read until close. The CLI tests (cli-passthrough, hooks, ...) run the same path
 * against the real dockerd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, RunningProxy } from '../../proxy/server.js';
import { createLogger } from '../../src/log.js';
import { portOf, TEST_TIMEOUT_MS } from './helpers.js';

let work: string;
before(() => { work = mkdtempSync(join(tmpdir(), 'proxy-fast-')); });
after(() => { if (work) rmSync(work, { recursive: true, force: true }); });

const quiet = createLogger({ level: 'error' });

interface Step {
  /** The request as the daemon must receive it: exact bytes, or a request line whose head (no body) is awaited. */
  request: string | { line: string };
  answer: string;
  /** Wait this long before answering (ms). */
  delay?: number;
  /** Close the connection after the answer. */
  close?: boolean;
}

interface StandIn {
  socket: string;
  /** Raw bytes received, one entry per connection, in the order connections came. */
  received: string[];
  /** Per connection: did the client half-close (FIN) before the stand-in closed? */
  sawEnd: boolean[];
  close(): Promise<void>;
}

/**
 * A stand-in daemon answering each request in turn from `script` (shared by all connections,
 * consumed in order). It recognises requests only by exact bytes or by request line plus blank
 * line, independently of the proxy's parser.
 */
async function standIn(script: Step[]): Promise<StandIn> {
  const socket = join(work, `d-${Math.random().toString(36).slice(2)}.sock`);
  const received: string[] = [];
  const sawEnd: boolean[] = [];
  const conns = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    conns.add(c);
    c.once('close', () => conns.delete(c));
    const n = received.push('') - 1;
    sawEnd.push(false);
    let pending = '';
    let busy = false;
    const serve = (): void => {
      if (busy || script.length === 0) return;
      const step = script[0];
      let used: number;
      if (typeof step.request === 'string') {
        if (!pending.startsWith(step.request)) return;
        used = step.request.length;
      } else {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1 || !pending.startsWith(step.request.line + '\r\n')) return;
        used = end + 4;
      }
      script.shift();
      pending = pending.slice(used);
      busy = true;
      setTimeout(() => {
        c.write(step.answer);
        busy = false;
        if (step.close) c.end();
        else serve();
      }, step.delay ?? 0);
    };
    c.on('data', (d: Buffer) => {
      received[n] += d.toString('latin1');
      pending += d.toString('latin1');
      serve();
    });
    // Like Go's server: a client's FIN ends the connection once the answers in hand are out.
    c.on('end', () => {
      sawEnd[n] = true;
      serve();
      const finish = (): void => { if (busy) setTimeout(finish, 10); else c.end(); };
      finish();
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket, received, sawEnd,
    close: () => new Promise<void>((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }),
  };
}

/** Connects to the proxy; `read()` resolves with everything received once the proxy closes. */
function client(proxy: RunningProxy): { sock: net.Socket; all: Promise<string>; until(pred: (s: string) => boolean): Promise<string> } {
  const sock = net.connect({ port: portOf(proxy.address), host: '127.0.0.1', allowHalfOpen: true });
  let got = '';
  const waiters: { pred: (s: string) => boolean; resolve: (s: string) => void }[] = [];
  sock.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    for (const w of [...waiters]) if (w.pred(got)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(got); }
  });
  const all = new Promise<string>((resolve, reject) => {
    sock.on('end', () => resolve(got));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  return { sock, all, until: (pred) => new Promise((resolve) => { if (pred(got)) resolve(got); else waiters.push({ pred, resolve }); }) };
}

async function withProxy<T>(d: StandIn, fn: (p: RunningProxy) => Promise<T>): Promise<T> {
  const p = await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket: d.socket, logger: quiet });
  try {
    return await fn(p);
  } finally {
    await p.close();
    await d.close();
  }
}

const GET_ODD = 'GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D HTTP/1.1\r\nHost: 127.0.0.1\r\nuser-agent: Docker-Client/20.10.24 (linux)\r\nX-Dup: one\r\nX-Dup: two\r\n\r\n';
const CHUNKED_ANSWER = 'HTTP/1.1 200 Odd Reason\r\nApi-Version: 1.41\r\nX-Dup: a\r\nx-dup: b\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n'
  + '3;ext=1\r\n[1,\r\n2\r\n2]\r\n0\r\nX-T: done\r\n\r\n';
const HEAD_PING = 'HEAD /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
const HEAD_ANSWER = 'HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n';
const POST_LENGTH = 'POST /v1.41/containers/abc/kill?signal=TERM HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"x":"\r\n\r\n"}';
const NO_CONTENT = 'HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n';
const POST_CHUNKED = 'PUT /v1.41/containers/abc/archive?path=%2Ftmp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n\r\n'
  + '4\r\nGET \r\n1c;a=b\r\n/smuggle-me HTTP/1.1\r\n\r\nxxxx\r\n0\r\nX-Sum: 1\r\n\r\n';
const LENGTH_ANSWER = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';

test('ordinary requests and answers pass byte for byte, pipelined or not, on one daemon connection', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (const pipelined of [false, true]) {
    const requests = [GET_ODD, HEAD_PING, POST_LENGTH, POST_CHUNKED];
    const answers = [CHUNKED_ANSWER, HEAD_ANSWER, NO_CONTENT, LENGTH_ANSWER];
    const d = await standIn(requests.map((request, i) => ({ request, answer: answers[i] })));
    await withProxy(d, async (p) => {
      const c = client(p);
      if (pipelined) {
        c.sock.write(requests.join(''));
      } else {
        let expected = '';
        for (let i = 0; i < requests.length; i++) {
          // Written in awkward pieces: bodies split anywhere are still followed to their end.
          const r = requests[i];
          const cut = r.indexOf('\r\n\r\n') + 4 + 3;
          c.sock.write(r.slice(0, cut));
          if (cut < r.length) setTimeout(() => c.sock.write(r.slice(cut)), 20);
          expected += answers[i];
          await c.until((s) => s.length >= expected.length);
        }
      }
      const got = await c.until((s) => s.length >= answers.join('').length);
      assert.equal(got, answers.join(''), 'the client gets exactly the daemon\'s bytes (chunk extensions, trailers, reason, header case)');
      c.sock.end();
      await c.all;
      assert.equal(d.received.length, 1, 'one daemon connection for the client connection');
      assert.equal(d.received[0], requests.join(''), 'the daemon gets exactly the client\'s bytes');
    });
  }
});

test('a request the fast path does not take goes to the http server, after the earlier answers', { timeout: TEST_TIMEOUT_MS }, async () => {
  // The second request carries Origin (the guard refuses it); the daemon answers the first slowly.
  const d = await standIn([
    { request: { line: 'GET /v1.41/info HTTP/1.1' }, answer: LENGTH_ANSWER, delay: 300 },
    { request: { line: 'GET /v1.41/version HTTP/1.1' }, answer: 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nversion' },
  ]);
  await withProxy(d, async (p) => {
    const c = client(p);
    c.sock.write('GET /v1.41/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
      + 'GET /v1.41/containers/json HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\r\n');
    const two = await c.until((s) => s.includes('"message"'));
    assert.ok(two.startsWith(LENGTH_ANSWER), `the daemon's answer comes first, whole: ${JSON.stringify(two)}`);
    assert.match(two.slice(LENGTH_ANSWER.length), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*refuses requests from web browsers/);
    // The connection lives on with the http server, which forwards through its own agent.
    c.sock.write('GET /v1.41/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    const all = await c.all;
    assert.match(all, /\r\n\r\nversion$/);
    assert.equal(d.received[0], 'GET /v1.41/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'the refused request never reached the daemon');
    assert.match(d.received[1], /^GET \/v1\.41\/version HTTP\/1\.1\r\n/);
  });
});

test('a head split across reads and an upgrade are served by the http server', { timeout: TEST_TIMEOUT_MS }, async () => {
  const d = await standIn([
    { request: { line: 'GET /v1.41/info HTTP/1.1' }, answer: LENGTH_ANSWER },
    { request: { line: 'POST /v1.41/exec/abc/start HTTP/1.1' }, answer: 'HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nraw-stream' },
  ]);
  await withProxy(d, async (p) => {
    const c = client(p);
    c.sock.write('GET /v1.41/info HTTP/1.1\r\nHo');
    setTimeout(() => c.sock.write('st: 127.0.0.1\r\n\r\n'), 50);
    assert.match(await c.until((s) => s.endsWith('hello')), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello$/);
    const u = client(p);
    u.sock.write('POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
    assert.match(await u.until((s) => s.endsWith('raw-stream')), /^HTTP\/1\.1 101 UPGRADED\r\n/);
    c.sock.destroy();
    u.sock.destroy();
  });
});

test('request smuggling: nothing hidden in a body reaches the daemon as a request', { timeout: TEST_TIMEOUT_MS }, async () => {
  const d = await standIn([{ request: { line: 'POST /a HTTP/1.1' }, answer: LENGTH_ANSWER }]);
  await withProxy(d, async (p) => {
    // Content-Length and Transfer-Encoding together: left to Node's http server, which refuses it.
    const both = client(p);
    both.sock.write('POST /a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.match(await both.all, /^HTTP\/1\.1 400 Bad Request/);
    // A chunked body that breaks the grammar: the connection ends, the rest is never relayed.
    const broken = client(p);
    broken.sock.write('POST /a HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello');
    await new Promise((r) => setTimeout(r, 50));
    broken.sock.write('XX\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await broken.all;
    assert.ok(!d.received.join('').includes('/smuggled'), `the daemon saw: ${JSON.stringify(d.received)}`);
  });
});

test('FINs pass each way: a half-closed client still gets its answer; an answer read until close ends the client', { timeout: TEST_TIMEOUT_MS }, async () => {
  const untilClose = 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nbytes until the daemon closes';
  const d = await standIn([
    { request: { line: 'GET /v1.41/a HTTP/1.1' }, answer: LENGTH_ANSWER, delay: 100 },
    { request: { line: 'GET /v1.41/b HTTP/1.1' }, answer: untilClose, close: true },
  ]);
  await withProxy(d, async (p) => {
    const c = client(p);
    c.sock.end('GET /v1.41/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // The stand-in answers after its client half-closed; the proxy passed that FIN on.
    await new Promise<void>((r) => { const t = setInterval(() => { if (d.sawEnd[0]) { clearInterval(t); r(); } }, 10); });
    assert.equal(await c.until((s) => s.endsWith('hello')), LENGTH_ANSWER);
    const e = client(p);
    e.sock.write('GET /v1.41/b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal(await e.all, untilClose, 'everything, then the end');
    c.sock.destroy();
  });
});

test('an idle daemon connection serves the next client connection; a busy one is never shared', { timeout: TEST_TIMEOUT_MS }, async () => {
  const d = await standIn([
    { request: { line: 'GET /v1.41/one HTTP/1.1' }, answer: LENGTH_ANSWER },
    { request: { line: 'GET /v1.41/slow HTTP/1.1' }, answer: LENGTH_ANSWER, delay: 300 },
    { request: { line: 'GET /v1.41/two HTTP/1.1' }, answer: LENGTH_ANSWER },
  ]);
  await withProxy(d, async (p) => {
    // A client that says goodbye between requests gets its FIN answered by the proxy.
    const a = client(p);
    a.sock.write('GET /v1.41/one HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await a.until((s) => s.endsWith('hello'));
    a.sock.end();
    assert.equal(await a.all, LENGTH_ANSWER);
    // Its daemon connection carries the next client's request; a request still being answered
    // keeps its connection to itself.
    const b = client(p);
    b.sock.write('GET /v1.41/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    const c = client(p);
    c.sock.write('GET /v1.41/two HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal(await c.until((s) => s.endsWith('hello')), LENGTH_ANSWER);
    assert.equal(await b.until((s) => s.endsWith('hello')), LENGTH_ANSWER);
    assert.equal(d.received.length, 2, 'two daemon connections for three clients');
    assert.match(d.received[0], /^GET \/v1\.41\/one [\s\S]*GET \/v1\.41\/slow /);
    assert.match(d.received[1], /^GET \/v1\.41\/two /);
    assert.deepEqual(d.sawEnd, [false, false], 'no FIN reached the daemon');
    b.sock.destroy();
    c.sock.destroy();
  });
});
