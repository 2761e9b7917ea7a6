/**
 * Ordinary (non-upgrade) requests to the daemon, through http-proxy's `web()` with the
 * adjustments a Docker proxy needs. http-proxy does the outgoing request and the request-body
 * piping; we do the response ourselves (`selfHandleResponse`) because http-proxy writes the
 * response headers only with the first body byte, and `docker run` deadlocks on that: the CLI
 * sends `POST /containers/{id}/wait` and will not send `start` until the wait's *headers* arrive,
 * while the daemon writes the wait's body only when the container exits.
 *
 * Other adjustments, each for a documented failure:
 *  - a keep-alive agent (http-proxy's default is a new daemon connection plus `Connection: close`
 *    per request: slower, and it changes what the client sees);
 *  - `toProxy` so the URL is forwarded as sent (otherwise url.parse re-escapes the query);
 *  - repeated request headers are forwarded as separate lines (http-proxy copies `req.headers`,
 *    where Node has joined them with ", ");
 *  - status line and response headers are copied from rawHeaders, duplicates and case kept;
 *  - when the client goes away the daemon request is destroyed (Ctrl-C on `logs -f` / `events`
 *    would otherwise leave a stream open on the daemon forever; http-proxy only handles clients
 *    that abort before their request body is complete);
 *  - no timeouts anywhere (waits, event streams and silent `logs -f` last hours).
 */
import http from 'node:http';
import { PassThrough } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from '../src/log.js';
import { sendJsonError } from './respond.js';

export interface ForwardOptions {
  /** Replacement request body (the original was consumed, e.g. to run hooks on it). */
  body?: Buffer;
  /** Takes over the daemon's answer; the default relays it at once. */
  onResponse?: (daemonRes: http.IncomingMessage) => void;
}

export interface Forwarder {
  readonly agent: http.Agent;
  forward(req: http.IncomingMessage, res: http.ServerResponse, opts?: ForwardOptions): void;
  close(): void;
}

export function createForwarder(dockerSocket: string, logger: Logger): Forwarder {
  // Keep-alive to the daemon; no socket timeout (an idle wait or events stream is normal).
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 64 });
  const proxy = httpProxy.createProxyServer({
    // http-proxy copies socketPath into http.request's options; its typings just don't list it.
    target: { socketPath: dockerSocket } as unknown as httpProxy.ProxyTarget,
    agent,
    selfHandleResponse: true,
    toProxy: true,
    prependPath: false,
    xfwd: false,
    ws: false,
  });
  // Handlers per request, so concurrent requests never see each other's callbacks.
  const responders = new WeakMap<http.IncomingMessage, (daemonRes: http.IncomingMessage) => void>();
  const pending = new WeakMap<http.IncomingMessage, http.ClientRequest>();

  proxy.on('proxyReq', (proxyReq, req, res) => {
    pending.set(req, proxyReq);
    if (res.destroyed || res.writableEnded) proxyReq.destroy();
  });
  proxy.on('proxyRes', (daemonRes, req) => {
    const respond = responders.get(req);
    responders.delete(req);
    respond?.(daemonRes);
  });
  proxy.on('econnreset', () => { /* the client left first; http-proxy has aborted the daemon request */ });

  return {
    agent,
    forward(req, res, opts = {}) {
      responders.set(req, opts.onResponse ?? ((daemonRes) => relayResponse(daemonRes, res)));
      res.once('close', () => {
        if (res.writableFinished) return;
        // The client went away mid-request or mid-stream: stop the daemon's side too.
        pending.get(req)?.destroy();
      });
      const headers = repeatedHeaders(req);
      if (opts.body !== undefined) {
        delete req.headers['transfer-encoding'];
        headers['content-length'] = String(opts.body.length);
      }
      // Array values reach http.request unchanged and become one header line each (the typings
      // only admit strings).
      const webOpts: httpProxy.ServerOptions = { headers: headers as Record<string, string> };
      if (opts.body !== undefined) webOpts.buffer = new PassThrough().end(opts.body);
      proxy.web(req, res, webOpts, (err: Error) => {
        if (res.headersSent) {
          res.destroy(err);
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        logger.warn('docker daemon request failed', { method: req.method, error: err.message, code });
        sendJsonError(res, 502, `cannot reach the docker daemon at ${dockerSocket}: ${err.message}`);
      });
    },
    close() {
      proxy.close();
      agent.destroy();
    },
  };
}

/** Headers the client sent more than once, as arrays (so Node writes one line per value). */
function repeatedHeaders(req: http.IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (req.rawHeaders.length / 2 === Object.keys(req.headers).length) return out;
  const seen = new Set<string>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (seen.has(name)) {
      const values = req.headersDistinct[name];
      if (values) out[name] = values;
    }
    seen.add(name);
  }
  return out;
}

/**
 * Status line and headers exactly as the daemon sent them, then the body. Headers of a streamed
 * answer (chunked: wait, events, logs, progress) are flushed at once, before any body byte; an
 * answer with a Content-Length is complete on the daemon side already, so its headers go out
 * with the first body bytes in one write instead of two.
 */
export function relayResponse(daemonRes: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(daemonRes.statusCode ?? 502, daemonRes.statusMessage, daemonRes.rawHeaders);
  if (daemonRes.headers['content-length'] === undefined) res.flushHeaders();
  daemonRes.pipe(res);
  daemonRes.on('error', (err) => res.destroy(err));
}
