/**
 * The Docker API proxy: listens where docker clients point DOCKER_HOST and forwards everything to
 * the real daemon, transparently (on plain listeners, ordinary requests through the byte relay of
 * fast-path.ts; everything else through Node's http server: forward.ts for requests, tunnel.ts
 * for hijacks/upgrades), except that interceptors (hooks.ts) may edit or refuse the few endpoints
 * listed in routes.ts. Requests from web pages are refused first (guard.ts).
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { resolveProxyOptions, type ProxyOptions } from './options.js';
import { createForwarder } from './forward.js';
import { createDaemonClient } from './daemon-client.js';
import { tunnelUpgrade, pathOnly } from './tunnel.js';
import { refusalReason, type GuardPolicy } from './guard.js';
import { parseApiPath, matchRoute } from './routes.js';
import { handleIntercepted, isHooked, type InterceptDeps } from './intercept.js';
import { createProxyServer, listenOn } from './listener.js';
import { putFastPathInFront } from './fast-path.js';
import { sendJsonError, sendRawJsonError } from './respond.js';

export type { ProxyOptions } from './options.js';

export interface RunningProxy {
  /** "127.0.0.1:PORT" (the real port when 0 was asked for) or the unix socket path. */
  address: string;
  /** What to put in DOCKER_HOST: "tcp://127.0.0.1:PORT" or "unix:///path". */
  dockerHost: string;
  /** Stops listening and cuts every open connection (streams, tunnels) and daemon connection. */
  close(): Promise<void>;
}

export async function startProxy(options: ProxyOptions = {}): Promise<RunningProxy> {
  const opts = resolveProxyOptions(options);
  const logger = opts.logger;
  const forwarder = createForwarder(opts.dockerSocket, logger);
  const daemon = createDaemonClient(opts.dockerSocket, forwarder.agent);
  const deps: InterceptDeps = {
    forwarder, daemon, interceptors: opts.interceptors, logger, maxBody: opts.maxBufferedBodyBytes,
  };
  // The Host check is against DNS rebinding by web pages: pointless on a unix socket (browsers
  // cannot reach one, and older CLIs send Host "docker" there) and when clients hold certificates.
  const guard: GuardPolicy = {
    trustAnyHost: opts.tls?.verifyClients === true || opts.listen.kind === 'unix',
    allowedHostNames: opts.allowedHostNames,
  };

  // Without interceptors nothing is ever routed: skip the path parsing on every request.
  const hooked = opts.interceptors.length > 0;
  const sockets = new Set<net.Socket | Duplex>();
  const track = (s: net.Socket | Duplex): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  const isHookedRequest = (method: string, url: string): boolean => {
    if (!hooked) return false;
    const api = parseApiPath(url);
    const route = api && matchRoute(method, api.path);
    return route !== undefined && isHooked(route, opts.interceptors);
  };

  const server = createProxyServer(opts.tls);
  if (opts.fastPath && !opts.tls) {
    // TLS connections stay with the https server: the handshake and record layer cost more than
    // core http does, and hijacks over TLS need its half-close handling (tunnel.ts).
    putFastPathInFront(server, {
      dockerSocket: opts.dockerSocket,
      logger,
      track,
      admit(head) {
        if (refusalReason(head.rawHeaders, guard) !== undefined || isHookedRequest(head.method, head.url)) return false;
        logger.debug('request', { method: head.method, path: pathOnly(head.url) });
        return true;
      },
    });
  }
  server.on('connection', track);
  server.on('tlsClientError', (err: Error) => logger.debug('TLS handshake refused', { error: err.message }));

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refusal = refusalReason(req.rawHeaders, guard);
    if (refusal !== undefined) {
      logger.warn('refused request', { method: req.method, path: pathOnly(req.url), reason: refusal });
      sendJsonError(res, 403, refusal);
      return;
    }
    logger.debug('request', { method: req.method, path: pathOnly(req.url) });
    if (hooked) {
      const api = parseApiPath(req.url ?? '/');
      const route = api && matchRoute(req.method ?? 'GET', api.path);
      if (api && route && isHooked(route, opts.interceptors)) {
        void handleIntercepted(route, api, req, res, deps);
        return;
      }
    }
    forwarder.forward(req, res);
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = refusalReason(req.rawHeaders, guard);
    if (refusal !== undefined) {
      logger.warn('refused upgrade', { method: req.method, path: pathOnly(req.url), reason: refusal });
      sendRawJsonError(socket, 403, 'Forbidden', refusal);
      return;
    }
    const api = parseApiPath(req.url ?? '/');
    const route = api && matchRoute(req.method ?? 'GET', api.path);
    if (route && isHooked(route, opts.interceptors)) {
      // A hooked endpoint sent as an upgrade would go through the raw tunnel past its hooks;
      // no docker client does this.
      sendRawJsonError(socket, 400, 'Bad Request', `the Calico Docker API proxy does not accept Upgrade on ${req.method} ${pathOnly(req.url)}`);
      return;
    }
    logger.debug('upgrade', { method: req.method, path: pathOnly(req.url), protocol: req.headers.upgrade });
    tunnelUpgrade(req, socket, head, opts.dockerSocket, logger, track);
  });

  let address: string;
  try {
    address = await listenOn(server, opts.listen, opts.dockerSocket, logger);
  } catch (err) {
    forwarder.close();
    throw err;
  }
  const scheme = opts.listen.kind === 'unix' ? 'unix://' : 'tcp://';
  logger.info('docker proxy listening', {
    address, dockerSocket: opts.dockerSocket, tls: opts.tls ? (opts.tls.verifyClients ? 'verify' : 'on') : 'off',
    fastPath: opts.fastPath && !opts.tls,
    interceptors: opts.interceptors.map((i) => i.name),
  });

  let closing: Promise<void> | undefined;
  return {
    address,
    dockerHost: scheme + address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        forwarder.close();
      });
      return closing;
    },
  };
}
