/**
 * Hijacked connections: attach, exec start (Upgrade: tcp), BuildKit's /grpc and /session
 * (Upgrade: h2c), and any other request carrying `Connection: Upgrade`, whatever the method.
 *
 * Why not http-proxy's `ws()`: it accepts only GET + `Upgrade: websocket` (it destroys a
 * `POST ... Upgrade: tcp`), sends the upstream request without a body (exec start carries a JSON
 * body the daemon reads *before* it answers 101), and writes its own fixed 101 status line. So this
 * is a raw byte tunnel in the style of Swarm classic: write the client's request line, its raw
 * headers (repeated headers stay separate lines: BuildKit registers one gRPC method per
 * `X-Docker-Expose-Session-Grpc-Method` line) and its body to a fresh daemon connection, then copy
 * bytes both ways. The daemon's own status line (`101 UPGRADED`, or a JSON 404/409) and every byte
 * after it reach the client unchanged, and each direction's FIN is passed on separately: without
 * `-i` the CLI half-closes at once and still expects all the output (`docker exec c ls`).
 *
 * One deliberate difference from a blind pipe: client bytes beyond the request body are held
 * until the daemon's status line is known (Go clients send nothing there; they wait for 101
 * first). If the daemon does not switch protocols, those bytes would be further requests on the
 * same connection, which would then slip past the interceptors, so they are dropped.
 */
import net from 'node:net';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../src/log.js';
import { sendRawJsonError } from './respond.js';

const MAX_STATUS_LINE = 8192;

export function tunnelUpgrade(
  req: http.IncomingMessage, client: Duplex, head: Buffer, dockerSocket: string, logger: Logger,
  track: (s: net.Socket) => void,
): void {
  if (client instanceof net.Socket) {
    // Node's HTTP server sockets are half-open capable, its HTTPS (TLS) ones are not: on the
    // client's FIN (TLS close_notify, which Go sends for CloseWrite) Node would end our side too
    // and the output still to come would be lost. TLS 1.3 allows writing after close_notify.
    client.allowHalfOpen = true;
    client.setTimeout(0);
    client.setNoDelay(true);
    client.setKeepAlive(true, 30000);
  }
  const upstream = net.connect({ path: dockerSocket, allowHalfOpen: true });
  track(upstream);
  upstream.write(requestHead(req));

  // Body bytes still expected on the client socket (Node 20 hands the first ones over in `head`).
  let bodyLeft = declaredBodyLength(req);
  const chunked = /\bchunked\b/i.test(String(req.headers['transfer-encoding'] ?? ''));
  let phase: 'request' | 'tunnel' | 'refused' = 'request';
  const held: Buffer[] = [];
  let clientEndedEarly = false;
  let upstreamBytes = 0;
  let statusBuf = Buffer.alloc(0);

  const fromClientBeforeStatus = (chunk: Buffer): void => {
    if (chunked) { upstream.write(chunk); return; } // cannot tell body from stream: pass it all
    if (bodyLeft > 0) {
      const n = Math.min(bodyLeft, chunk.length);
      upstream.write(chunk.subarray(0, n));
      bodyLeft -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0) held.push(chunk);
  };
  const onClientEndEarly = (): void => { clientEndedEarly = true; };

  const startTunnel = (): void => {
    phase = 'tunnel';
    client.removeListener('data', fromClientBeforeStatus);
    client.removeListener('end', onClientEndEarly);
    upstream.removeListener('data', fromUpstreamBeforeStatus);
    for (const b of held) upstream.write(b);
    held.length = 0;
    if (clientEndedEarly) upstream.end();
    else client.pipe(upstream);
    upstream.pipe(client);
  };
  const refuseFurtherInput = (): void => {
    phase = 'refused';
    client.removeListener('data', fromClientBeforeStatus);
    client.removeListener('end', onClientEndEarly);
    upstream.removeListener('data', fromUpstreamBeforeStatus);
    held.length = 0;
    client.on('data', () => { /* dropped: see the module comment */ });
    // Nothing more goes to the daemon on this connection: its FIN makes the daemon close once the
    // answer is out, which ends the client side too (the client may be waiting for that).
    upstream.end();
    upstream.pipe(client);
  };

  const fromUpstreamBeforeStatus = (chunk: Buffer): void => {
    upstreamBytes += chunk.length;
    client.write(chunk);
    statusBuf = Buffer.concat([statusBuf, chunk]);
    const eol = statusBuf.indexOf('\r\n');
    if (eol === -1 && statusBuf.length < MAX_STATUS_LINE) return;
    const line = statusBuf.subarray(0, eol === -1 ? statusBuf.length : eol).toString('latin1');
    statusBuf = Buffer.alloc(0);
    const switched = /^HTTP\/1\.[01] 101\b/.test(line);
    logger.debug('upgrade answered', { method: req.method, path: pathOnly(req.url), status: line.slice(9, 12) });
    if (switched) startTunnel();
    else refuseFurtherInput();
  };

  if (req.complete) {
    // Node <= 24: the body (if any) was parsed as part of the upgraded stream and is in `head`.
    fromClientBeforeStatus(head);
  } else {
    // Newer Node parses the body onto `req`; the raw stream (and `head`) start after it.
    bodyLeft = 0;
    req.on('data', (c: Buffer) => upstream.write(c));
    req.once('end', () => fromClientBeforeStatus(head));
  }
  client.on('data', fromClientBeforeStatus);
  client.once('end', onClientEndEarly);
  upstream.on('data', fromUpstreamBeforeStatus);

  upstream.on('error', (err) => {
    logger.debug('daemon side of a hijacked connection failed', { error: err.message });
    if (upstreamBytes === 0 && phase === 'request') {
      sendRawJsonError(client, 502, 'Bad Gateway', `cannot reach the docker daemon at ${dockerSocket}: ${err.message}`);
      return;
    }
    // Let the output already queued for the client drain, then close.
    client.end();
  });
  upstream.on('close', () => {
    if (!client.writableEnded) client.end();
  });
  client.on('error', (err) => {
    logger.debug('client side of a hijacked connection failed', { error: err.message });
    upstream.destroy();
    client.destroy();
  });
  client.on('close', () => upstream.destroy());
}

/** The request line and raw headers, as the client sent them. */
function requestHead(req: http.IncomingMessage): string {
  let s = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) s += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return s + '\r\n';
}

function declaredBodyLength(req: http.IncomingMessage): number {
  const n = Number(req.headers['content-length'] ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

export function pathOnly(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
