/**
 * The proxy's listening socket: an HTTP or HTTPS server bound to TCP or to a unix socket. Node's
 * defaults would cut Docker's long streams, so every server timeout is off or raised:
 *  - requestTimeout 0: the default 300 s answers a `docker load` / legacy `build` / `cp` upload
 *    that takes longer with 408 in mid-upload;
 *  - keepAliveTimeout above Go's 90 s idle-connection timeout, so the client, not we, closes idle
 *    connections (a close racing a reuse gives "persistent connection closed");
 *  - maxHeaderSize 1 MiB like dockerd (X-Registry-Config and build query strings are large);
 *  - socket timeout 0 (waits, `events` and `logs -f` are silent for hours).
 * A unix socket gets the owner, group and mode of the daemon's socket, so exactly the users who
 * may use docker may use the proxy.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { statSync, lstatSync, unlinkSync, chmodSync, chownSync } from 'node:fs';
import type { Logger } from '../src/log.js';
import type { ListenAddress, TlsMaterial } from './options.js';
import { ProxyConfigError } from './errors.js';

const SERVER_OPTIONS: http.ServerOptions = {
  requestTimeout: 0,
  headersTimeout: 60_000,
  keepAliveTimeout: 120_000,
  maxHeaderSize: 1024 * 1024,
  noDelay: true,
};

export function createProxyServer(tls: TlsMaterial | undefined): http.Server {
  const server = tls
    ? https.createServer({
      ...SERVER_OPTIONS,
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: tls.verifyClients,
      rejectUnauthorized: tls.verifyClients,
    })
    : http.createServer(SERVER_OPTIONS);
  server.timeout = 0;
  return server;
}

/** Binds the server; resolves with the bound address ("127.0.0.1:PORT" or the socket path). */
export async function listenOn(server: http.Server, addr: ListenAddress, dockerSocket: string, logger: Logger): Promise<string> {
  if (addr.kind === 'tcp') {
    await listenAsync(server, { host: addr.host, port: addr.port });
    const a = server.address() as net.AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }
  await removeStaleSocket(addr.path);
  await listenAsync(server, { path: addr.path });
  copySocketPermissions(dockerSocket, addr.path, logger);
  return addr.path;
}

function listenAsync(server: http.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = opts.path ?? `${opts.host}:${opts.port}`;
      reject(new ProxyConfigError(`cannot listen on ${where}: ${err.message}`, err.code === 'EADDRINUSE' ? 'another process is using it; stop it or choose another proxyListen' : undefined));
    };
    server.once('error', onError);
    server.listen(opts, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** A socket file nobody listens on (left by a crash) is removed; a live one or a non-socket is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try { st = lstatSync(path); } catch { return; }
  if (!st.isSocket()) throw new ProxyConfigError(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect({ path });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (live) throw new ProxyConfigError(`something is already listening on ${path}`, 'stop it or choose another proxyListen');
  unlinkSync(path);
}

function copySocketPermissions(from: string, to: string, logger: Logger): void {
  try {
    const st = statSync(from);
    chownSync(to, st.uid, st.gid);
    chmodSync(to, st.mode & 0o7777);
  } catch (err) {
    // Without the daemon's socket to copy from, fall back to the daemon's usual root-only default.
    logger.warn('cannot copy the docker socket permissions; proxy socket is root-only', { dockerSocket: from, error: (err as Error).message });
    chmodSync(to, 0o600);
  }
}
