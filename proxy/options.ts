/**
 * Options of the Docker API proxy, their defaults and their validation. Listening anywhere but
 * loopback or a unix socket is refused unless clients must present a certificate (tlsverify):
 * the Docker API is root on this machine.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { DockerInterceptor } from './hooks.js';
import type { Logger } from '../src/log.js';
import { createLogger } from '../src/log.js';
import { ProxyConfigError } from './errors.js';

export const DEFAULT_PROXY_LISTEN = '127.0.0.1:2377';
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
/** Bound on what the proxy buffers to run hooks (create bodies, inspect answers). */
export const DEFAULT_MAX_BUFFERED_BODY = 16 * 1024 * 1024;

export interface ProxyOptions {
  /**
   * Where to listen: "127.0.0.1:2377" (default), "tcp://HOST:PORT", "[::1]:2377", or a unix
   * socket ("/run/calico-docker.sock" or "unix:///..."); port 0 picks a free port. A unix socket
   * gets the owner, group and mode of the daemon's socket.
   */
  proxyListen?: string;
  /** The real daemon's unix socket, a path or unix://path. Default /var/run/docker.sock. */
  dockerSocket?: string;
  /** Serve TLS (docker's --tls). Implied by tlsverify. */
  tls?: boolean;
  /** Serve TLS and require client certificates signed by tlscacert (docker's --tlsverify). */
  tlsverify?: boolean;
  /** Defaults as docker's: $DOCKER_CERT_PATH or ~/.docker, files ca.pem, cert.pem, key.pem. */
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  /** Hooks, called in this order. */
  interceptors?: readonly DockerInterceptor[];
  logger?: Logger;
  /**
   * Host-header names accepted besides IP literals, "localhost" and "*.localhost" (a guard against
   * DNS rebinding from web pages). Not checked when clients are verified by certificate.
   */
  allowedHostNames?: readonly string[];
  /** Largest body buffered for hooks. Default 16 MiB. */
  maxBufferedBodyBytes?: number;
  /**
   * Relay ordinary requests on plain listeners byte for byte (fast-path.ts). Default true; false
   * sends every request through Node's http server, for comparison (bench/proxy) or to rule the
   * fast path out when chasing a problem.
   */
  fastPath?: boolean;
}

export type ListenAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  verifyClients: boolean;
}

export interface ResolvedProxyOptions {
  listen: ListenAddress;
  dockerSocket: string;
  tls?: TlsMaterial;
  interceptors: readonly DockerInterceptor[];
  logger: Logger;
  allowedHostNames: ReadonlySet<string>;
  maxBufferedBodyBytes: number;
  fastPath: boolean;
}

export function resolveProxyOptions(opts: ProxyOptions = {}): ResolvedProxyOptions {
  const listen = parseListenAddress(opts.proxyListen ?? DEFAULT_PROXY_LISTEN);
  const dockerSocket = parseDockerSocket(opts.dockerSocket ?? DEFAULT_DOCKER_SOCKET);
  // Decided before any certificate is read, so the refusal names the real problem.
  if (listen.kind === 'tcp' && !isLoopbackHost(listen.host) && opts.tlsverify !== true) {
    throw new ProxyConfigError(
      `refusing to listen on ${listen.host}:${listen.port} without --tlsverify: the Docker API gives root on this machine to anyone who can reach it`,
      'listen on 127.0.0.1 or a unix socket, or give tlsverify with tlscacert/tlscert/tlskey',
    );
  }
  const tls = loadTls(opts);
  const max = opts.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY;
  if (!Number.isInteger(max) || max <= 0) throw new ProxyConfigError(`maxBufferedBodyBytes must be a positive integer, got ${max}`);
  return {
    listen,
    dockerSocket,
    tls,
    interceptors: opts.interceptors ?? [],
    logger: opts.logger ?? createLogger({ base: { component: 'docker-proxy' } }),
    allowedHostNames: new Set((opts.allowedHostNames ?? []).map((h) => h.toLowerCase())),
    maxBufferedBodyBytes: max,
    fastPath: opts.fastPath ?? true,
  };
}

export function parseListenAddress(spec: string): ListenAddress {
  const s = spec.trim();
  if (s.startsWith('unix://')) return unixAddress(s.slice('unix://'.length), spec);
  if (s.startsWith('/') || s.startsWith('./')) return unixAddress(s, spec);
  const hostPort = s.startsWith('tcp://') ? s.slice('tcp://'.length).replace(/\/$/, '') : s;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]/]+)):(\d{1,5})$/.exec(hostPort);
  if (!m) {
    throw new ProxyConfigError(
      `cannot parse proxy listen address ${JSON.stringify(spec)}`,
      'use HOST:PORT (e.g. 127.0.0.1:2377, [::1]:2377), tcp://HOST:PORT, or a unix socket path',
    );
  }
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65535) throw new ProxyConfigError(`port ${port} in ${JSON.stringify(spec)} is out of range`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new ProxyConfigError(`${JSON.stringify(host)} in ${JSON.stringify(spec)} is not an IPv6 address`);
  return { kind: 'tcp', host, port };
}

function unixAddress(path: string, spec: string): ListenAddress {
  if (path === '') throw new ProxyConfigError(`empty unix socket path in ${JSON.stringify(spec)}`);
  // sun_path holds 108 bytes including the terminating NUL.
  if (Buffer.byteLength(path) > 107) throw new ProxyConfigError(`unix socket path ${path} is longer than 107 bytes`);
  return { kind: 'unix', path };
}

function parseDockerSocket(spec: string): string {
  const path = spec.startsWith('unix://') ? spec.slice('unix://'.length) : spec;
  if (!path.startsWith('/')) {
    throw new ProxyConfigError(
      `dockerSocket must be the daemon's unix socket (a path or unix:///path), got ${JSON.stringify(spec)}`,
      'e.g. /var/run/docker.sock',
    );
  }
  return path;
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function loadTls(opts: ProxyOptions): TlsMaterial | undefined {
  const verify = opts.tlsverify === true;
  if (!verify && opts.tls !== true) return undefined;
  const certDir = process.env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ProxyConfigError(`cannot read ${flag} ${file}: ${(err as Error).message}`, `give --${flag}, or set DOCKER_CERT_PATH to a directory with ca.pem, cert.pem and key.pem`);
    }
  };
  const cert = read('tlscert', opts.tlscert ?? join(certDir, 'cert.pem'));
  const key = read('tlskey', opts.tlskey ?? join(certDir, 'key.pem'));
  const caFile = opts.tlscacert ?? (verify ? join(certDir, 'ca.pem') : undefined);
  const ca = caFile !== undefined ? read('tlscacert', caFile) : undefined;
  return { cert, key, ca, verifyClients: verify };
}
