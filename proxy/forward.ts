/**
 * Ordinary (non-upgrade) requests to the daemon through Node's http machinery: one `http.request`
 * per client request over a keep-alive agent on the daemon's socket, the request line and raw
 * headers passed as the client sent them, the daemon's status line and raw headers passed back.
 * On plain listeners most requests never get here: fast-path.ts relays them as bytes, and hands
 * a connection over to this path only for what needs HTTP objects (hooked endpoints, refusals,
 * unusual requests) or when the daemon cannot be reached. TLS listeners use this path for all.
 *
 * Why not http-proxy's `web()` (the project's preferred package), which was used here first:
 *  - it writes the response headers only with the first body byte, and `docker run` deadlocks on
 *    that: the CLI sends `POST /containers/{id}/wait` and will not send `start` until the wait's
 *    *headers* arrive, while the daemon writes the wait's body only when the container exits. The
 *    workaround (`selfHandleResponse`) leaves the whole response to us anyway;
 *  - it rebuilds request headers from `req.headers` (repeated headers joined with ", "), collapses
 *    "//" in paths, re-escapes the query unless `toProxy`, and opens a new daemon connection with
 *    `Connection: close` per request unless given an agent — each needed a workaround;
 *  - after those workarounds it still cost about 0.1 ms of CPU more per request than this file
 *    (measured: 290-360 µs against 195-240 µs per `GET /containers/json` on this 2-core VM, and
 *    50-70 µs more at p50), which is half of the 0.2 ms budget for the whole proxy hop.
 * What is left is small: the pieces http-proxy did plus the ones it did not (flushing headers,
 * cancelling abandoned daemon requests). Upgrades are in tunnel.ts.
 *
 * No timeouts anywhere: waits, event streams and silent `logs -f` last hours.
 */
import http from 'node:http';
import type { Logger } from '../src/log.js';
import { sendJsonError } from './respond.js';

export interface ForwardOptions {
  /** Replacement request body (the original was consumed, e.g. to run hooks on it). */
  body?: Buffer;
  /** Takes over the daemon's answer; the default relays it at once. */
  onResponse?: (daemonRes: http.IncomingMessage) => void;
  /** Told when the daemon could not be asked at all (the client gets a 502). */
  onError?: (err: Error) => void;
}

export interface Forwarder {
  readonly agent: http.Agent;
  forward(req: http.IncomingMessage, res: http.ServerResponse, opts?: ForwardOptions): void;
  close(): void;
}

export function createForwarder(dockerSocket: string, logger: Logger): Forwarder {
  // Keep-alive to the daemon, as many connections as there are concurrent requests (a wait or an
  // events stream holds one for as long as it lasts).
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 64 });
  return {
    agent,
    forward(req, res, opts = {}) {
      const upstream = http.request({
        socketPath: dockerSocket,
        agent,
        method: req.method,
        path: req.url,
        // A flat [name, value, ...] array is written line by line: repeated headers (Accept on
        // events) stay separate, names keep their case, and Node adds no Host of its own.
        headers: opts.body === undefined ? req.rawHeaders : withLength(req.rawHeaders, opts.body.length),
      });
      upstream.on('response', opts.onResponse ?? ((daemonRes) => relayResponse(daemonRes, res)));
      upstream.on('error', (err) => {
        if (res.headersSent) {
          res.destroy(err);
          return;
        }
        logger.warn('docker daemon request failed', { method: req.method, error: err.message });
        opts.onError?.(err);
        sendJsonError(res, 502, `cannot reach the docker daemon at ${dockerSocket}: ${err.message}`);
      });
      // The client went away mid-request or mid-stream (Ctrl-C on `logs -f`, `events`, or `docker
      // run -d` dropping its wait): stop the daemon's side too, or it streams into the void forever.
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.once('error', () => upstream.destroy());
      if (opts.body !== undefined) upstream.end(opts.body);
      else req.pipe(upstream);
    },
    close() {
      agent.destroy();
    },
  };
}

/** The client's raw headers with its length replaced by `length` (the body was rewritten). */
function withLength(rawHeaders: readonly string[], length: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  out.push('Content-Length', String(length));
  return out;
}

/**
 * Status line and headers exactly as the daemon sent them, then the body, with as few writes as
 * possible: what the daemon sent during one turn of the event loop (headers, body pieces, the end
 * of a chunked body) goes to the client in one write at the end of that turn. Headers therefore
 * never wait for a body — `POST /containers/{id}/wait` and `GET /events` send theirs at once and
 * the body hours later, and `docker run` deadlocks if the wait's headers are held back — and a
 * small answer costs the client one wake-up instead of three (headers, body, chunked end).
 */
export function relayResponse(daemonRes: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(daemonRes.statusCode ?? 502, daemonRes.statusMessage, daemonRes.rawHeaders);
  let pending: Buffer[] = [];
  let ended = false;
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    scheduled = undefined;
    if (pending.length === 0 && !ended) {
      res.flushHeaders();
      return;
    }
    res.cork();
    let ok = true;
    for (const chunk of pending) ok = res.write(chunk);
    pending = [];
    if (ended) res.end();
    res.uncork();
    if (!ok && !ended) {
      // The client reads slower than the daemon writes (docker save, logs): wait for it.
      daemonRes.pause();
      res.once('drain', () => daemonRes.resume());
    }
  };
  const schedule = (): void => { scheduled ??= setImmediate(flush); };
  daemonRes.on('data', (chunk: Buffer) => { pending.push(chunk); schedule(); });
  daemonRes.on('end', () => { ended = true; schedule(); });
  daemonRes.on('error', (err) => res.destroy(err));
  res.once('close', () => { if (scheduled) clearImmediate(scheduled); });
  schedule();
}
