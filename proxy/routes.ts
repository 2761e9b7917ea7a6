/**
 * Which Docker API endpoints the proxy intercepts, matched the way the daemon routes them:
 * optional `/v<version>` prefix (the CLI always versions, other clients may not), the
 * percent-decoded path (Go's router sees `/v1.41/containers/cr%65ate` as `.../create`, so a filter
 * on the raw text could be bypassed), and the query string ignored.
 */

export type InterceptedRoute =
  | { kind: 'create' }
  | { kind: 'start' | 'restart'; containerRef: string }
  | { kind: 'inspect'; containerRef: string }
  | { kind: 'delete'; containerRef: string };

export interface ParsedApiPath {
  /** "1.41" for `/v1.41/...`, undefined for an unversioned path. */
  apiVersion?: string;
  /** Decoded path without the version prefix, e.g. `/containers/abc/start`. */
  path: string;
  query: URLSearchParams;
}

const VERSION_PREFIX = /^\/v([0-9.]+)(?=\/)/;

/** Splits a request URL; undefined if it cannot be decoded (the daemon rejects those too). */
export function parseApiPath(url: string): ParsedApiPath | undefined {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  const m = VERSION_PREFIX.exec(path);
  if (m) return { apiVersion: m[1], path: path.slice(m[0].length), query };
  return { path, query };
}

// Patterns mirror the daemon's routes: `{name:.*}` for start/restart/json, `{name}` for delete.
const START = /^\/containers\/(.+)\/(start|restart)$/;
const INSPECT = /^\/containers\/(.+)\/json$/;
const DELETE = /^\/containers\/([^/]+)$/;

export function matchRoute(method: string, path: string): InterceptedRoute | undefined {
  switch (method) {
    case 'POST': {
      if (path === '/containers/create') return { kind: 'create' };
      const m = START.exec(path);
      if (m) return { kind: m[2] as 'start' | 'restart', containerRef: m[1] };
      return undefined;
    }
    case 'GET': {
      const m = INSPECT.exec(path);
      return m ? { kind: 'inspect', containerRef: m[1] } : undefined;
    }
    case 'DELETE': {
      const m = DELETE.exec(path);
      return m ? { kind: 'delete', containerRef: m[1] } : undefined;
    }
    default:
      return undefined;
  }
}
