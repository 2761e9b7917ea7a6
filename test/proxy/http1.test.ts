/**
 * The fast path's HTTP/1.1 framing (pure logic): which request heads it takes, where bodies and
 * answers end, and that anything it would read differently from the daemon is left to Node's
 * http server ("unusual") or breaks the connection (malformed chunked bodies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, BodyTracker, ResponseTracker, INCOMPLETE, UNUSUAL, type RequestHead } from '../../proxy/http1.js';
import { HttpFramingError } from '../../proxy/errors.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const head = (s: string): RequestHead => {
  const h = parseRequestHead(b(s), 0);
  assert.equal(typeof h, 'object', `expected a plain head: ${JSON.stringify(s)}`);
  return h as RequestHead;
};

test('plain request heads: method, target, raw headers as sent, body framing, end offset', () => {
  const text = 'GET /v1.41/containers/json?all=1&filters=%7B%7D HTTP/1.1\r\nHost: 127.0.0.1:2377\r\nUser-Agent: Docker-Client/20.10.24 (linux)\r\nX-Dup: a\r\nx-dup:  b \t\r\n\r\n';
  const h = head(text + 'NEXT');
  assert.equal(h.method, 'GET');
  assert.equal(h.url, '/v1.41/containers/json?all=1&filters=%7B%7D');
  assert.deepEqual(h.rawHeaders, ['Host', '127.0.0.1:2377', 'User-Agent', 'Docker-Client/20.10.24 (linux)', 'X-Dup', 'a', 'x-dup', 'b']);
  assert.deepEqual(h.body, { kind: 'none' });
  assert.equal(h.end, text.length);

  assert.deepEqual(head('POST /containers/create HTTP/1.1\r\nContent-Length: 12\r\n\r\n').body, { kind: 'length', length: 12 });
  assert.deepEqual(head('POST /build HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n').body, { kind: 'chunked' });
  assert.deepEqual(head('POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n').body, { kind: 'none' });
  assert.equal(head('GET / HTTP/1.1\r\n\r\n').rawHeaders.length, 0, 'no headers at all is plain too');
  assert.equal(head('GET /_ping HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n').method, 'GET');
  // Obs-text in values (Go accepts it) and a second head later in the same buffer.
  const two = b('GET /a HTTP/1.1\r\nX: caf\xe9\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n');
  const first = parseRequestHead(two, 0) as RequestHead;
  assert.equal((parseRequestHead(two, first.end) as RequestHead).method, 'HEAD');
});

test('a head not yet whole is incomplete', () => {
  assert.equal(parseRequestHead(b('GET /v1.41/info HTTP/1.1\r\nHost: x\r\n'), 0), INCOMPLETE);
  assert.equal(parseRequestHead(b('GET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r'), 0), INCOMPLETE);
  assert.equal(parseRequestHead(b(''), 0), INCOMPLETE);
});

test('anything but the plainest HTTP/1.1 is unusual (left to Node\'s http server)', () => {
  const unusual = [
    'GET / HTTP/1.0\r\n\r\n',
    'GET http://127.0.0.1/info HTTP/1.1\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\n\r\n',
    'CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n',
    'get / HTTP/1.1\r\n\r\n',
    '\r\nGET / HTTP/1.1\r\n\r\n',
    'GET /a b HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n',
    'GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n',
    'GET / HTTP/1.1\r\nX : a\r\n\r\n',
    'GET / HTTP/1.1\r\nX\x01: a\r\n\r\n',
    'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n',
    'GET / HTTP/1.1\r\nNoColon\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
    'POST /exec/x/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
    'POST /grpc HTTP/1.1\r\nUpgrade: h2c\r\n\r\n',
    'GET / HTTP/1.1\r\nConnection: keep-alive, UPGRADE\r\n\r\n',
    'POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n',
  ];
  for (const text of unusual) assert.equal(parseRequestHead(b(text), 0), UNUSUAL, JSON.stringify(text));
});

/** Feeds `bytes` to a tracker in pieces of `step` bytes; returns where the body ended (offset in `bytes`). */
function bodyEnd(framing: ConstructorParameters<typeof BodyTracker>[0], bytes: Buffer, step: number): number {
  const t = new BodyTracker(framing);
  for (let at = 0; at < bytes.length; at += step) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + step));
    const used = t.consume(piece, 0);
    if (t.done) return at + used;
    assert.equal(used, piece.length, 'an unfinished body takes the whole piece');
  }
  return -1;
}

test('bodies end where their framing says, however the bytes are split', () => {
  const chunked = b('5\r\nhello\r\n1a;name=value;x\r\nabcdefghijklmnopqrstuvwxyz\r\nA\r\n0123456789\r\n0\r\nTrailer-One: 1\r\nX: y\r\n\r\n');
  const next = b('GET / HTTP/1.1\r\n\r\n');
  for (const step of [1, 2, 3, 7, 64, 4096]) {
    assert.equal(bodyEnd({ kind: 'chunked' }, Buffer.concat([chunked, next]), step), chunked.length, `chunked, step ${step}`);
    assert.equal(bodyEnd({ kind: 'length', length: 10 }, b('0123456789GET'), step), 10, `length, step ${step}`);
  }
  assert.equal(bodyEnd({ kind: 'chunked' }, b('0\r\n\r\n'), 1), 5, 'an empty chunked body');
  assert.equal(new BodyTracker({ kind: 'none' }).done, true);
});

test('a chunked body that breaks the grammar throws (the connection cannot go on)', () => {
  const bad = [
    'x\r\n',                   // not hex
    '\r\n',                    // no size
    '5\nhello\r\n0\r\n\r\n',   // bare LF after the size
    '5 \r\nhello\r\n',         // blank after the size
    '5\r\nhelloX\r\n',         // data longer than its size
    '5\r\nhello\n0\r\n\r\n',   // bare LF after the data
    '0\r\nbad trailer\r\n\r\n',
    '0\r\n\r\r\n',
    '1234567890abc\r\n',       // absurd size
    '5;ext\x01\r\nhello\r\n',  // control byte in an extension
  ];
  for (const text of bad) {
    assert.throws(() => bodyEnd({ kind: 'chunked' }, b(text), 1), HttpFramingError, JSON.stringify(text));
    assert.throws(() => new BodyTracker({ kind: 'chunked' }).consume(b(text), 0), HttpFramingError, JSON.stringify(text));
  }
});

function answersIdle(methods: string[], daemonBytes: string, step = 1 << 20): ResponseTracker {
  const t = new ResponseTracker();
  for (const m of methods) t.expect(m);
  const bytes = b(daemonBytes);
  for (let at = 0; at < bytes.length; at += step) t.feed(bytes.subarray(at, at + step));
  return t;
}

test('answers end as RFC 9112 §6.3 says: HEAD, 1xx, 204, 304, length, chunked, until close', () => {
  const chunkedAnswer = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTRANSFER-ENCODING: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n';
  const cases: { methods: string[]; bytes: string }[] = [
    { methods: ['HEAD'], bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\n' },
    { methods: ['POST'], bytes: 'HTTP/1.1 204 No Content\r\n\r\n' },
    { methods: ['POST'], bytes: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n' },
    { methods: ['POST'], bytes: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\n{}\r\n' },
    { methods: ['GET'], bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' },
    { methods: ['GET'], bytes: chunkedAnswer },
    { methods: ['GET', 'HEAD', 'GET'], bytes: chunkedAnswer + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' + 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n' },
  ];
  for (const c of cases) {
    for (const step of [1, 5, 1 << 20]) {
      assert.equal(answersIdle(c.methods, c.bytes, step).idle, true, `${JSON.stringify(c.bytes)} in steps of ${step}`);
      assert.equal(answersIdle(c.methods, c.bytes.slice(0, -1), step).idle, false, `one byte short: ${JSON.stringify(c.bytes)}`);
    }
  }
  // No length and no chunking: the answer lasts until the daemon closes.
  const t = answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes');
  assert.equal(t.idle, false);
  t.closed();
  assert.equal(t.idle, true);
  // A coding list not ending in chunked is read until close too.
  assert.equal(answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n').idle, false);
  // After 101 the connection is a tunnel: never idle again, nothing parsed.
  const up = answersIdle(['POST'], 'HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00garbage HTTP/1.1 200');
  assert.equal(up.idle, false);
});

test('daemon bytes that make no sense as answers throw', () => {
  assert.throws(() => answersIdle([], 'HTTP/1.1 200 OK\r\n\r\n'), /answer to no request/);
  assert.throws(() => answersIdle(['GET'], 'HTTP/2 200\r\n\r\n'), /status line/);
  assert.throws(() => answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n'), /Content-Length/);
  assert.throws(() => answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), /Content-Length/);
  assert.throws(() => answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), HttpFramingError);
  assert.throws(() => answersIdle(['GET'], 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n'), /answer to no request/);
});
