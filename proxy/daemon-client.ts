/**
 * A minimal client for the real daemon's socket, given to hooks and used by the proxy to resolve
 * container references to full ids. It shares the proxy's keep-alive agent, so a lookup costs one
 * round trip on an already open connection. Requests go to unversioned paths unless the caller
 * versions them (the daemon then uses its own default version).
 */
import http from 'node:http';
import { CalicoError } from '../src/errors.js';

export interface DaemonResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The parts of `GET /containers/{id}/json` the proxy and hooks commonly read. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  State: { Running: boolean; Pid: number; Status: string; [k: string]: unknown };
  Config: { Env?: string[] | null; Labels?: Record<string, string> | null; Hostname?: string; Image?: string; [k: string]: unknown };
  HostConfig: { NetworkMode?: string; [k: string]: unknown };
  NetworkSettings: { [k: string]: unknown };
  [k: string]: unknown;
}

export class DaemonRequestError extends CalicoError {
  constructor(readonly method: string, readonly path: string, readonly status: number | undefined, message: string, cause?: unknown) {
    super(`docker daemon ${method} ${path}: ${message}`, { cause });
  }
}

export interface DaemonClient {
  readonly socketPath: string;
  /** One request with a small body; the whole answer is buffered. Objects are sent as JSON. */
  request(method: string, path: string, body?: Buffer | string | object): Promise<DaemonResponse>;
  /** Inspect a container by id, id prefix or name; undefined if the daemon says 404. */
  inspectContainer(ref: string): Promise<ContainerInspect | undefined>;
  /** Opens a streaming GET (e.g. `/events?filters=...`); the caller reads and destroys it. */
  openStream(path: string): Promise<http.IncomingMessage>;
}

const DEFAULT_TIMEOUT_MS = 60000;

export function createDaemonClient(socketPath: string, agent: http.Agent): DaemonClient {
  const request = (method: string, path: string, body?: Buffer | string | object): Promise<DaemonResponse> => {
    const payload = body === undefined ? undefined
      : Buffer.isBuffer(body) ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    const headers: http.OutgoingHttpHeaders = { Host: 'api.moby.localhost' };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, agent, method, path, headers, timeout: DEFAULT_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(new DaemonRequestError(method, path, res.statusCode, err.message, err)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${DEFAULT_TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(new DaemonRequestError(method, path, undefined, err.message, err)));
      req.end(payload);
    });
  };

  return {
    socketPath,
    request,
    async inspectContainer(ref: string): Promise<ContainerInspect | undefined> {
      const path = `/containers/${encodeURIComponent(ref)}/json`;
      const res = await request('GET', path);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new DaemonRequestError('GET', path, res.status, daemonMessage(res));
      return JSON.parse(res.body.toString('utf8')) as ContainerInspect;
    },
    openStream(path: string): Promise<http.IncomingMessage> {
      return new Promise((resolve, reject) => {
        // No timeout: event and log streams can be silent for hours.
        const req = http.request({ socketPath, agent, method: 'GET', path, headers: { Host: 'api.moby.localhost' } }, (res) => {
          if ((res.statusCode ?? 0) >= 400) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => reject(new DaemonRequestError('GET', path, res.statusCode, daemonMessage({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))));
            return;
          }
          resolve(res);
        });
        req.on('error', (err) => reject(new DaemonRequestError('GET', path, undefined, err.message, err)));
        req.end();
      });
    },
  };
}

/** The daemon's `{"message": ...}` text, or the raw body. */
export function daemonMessage(res: DaemonResponse): string {
  const text = res.body.toString('utf8').trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch { /* not JSON */ }
  return text || `status ${res.status}`;
}
