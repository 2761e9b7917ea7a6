/**
 * Small helpers for answers the proxy writes itself and bodies it buffers for hooks.
 *
 * The proxy's own errors are JSON `{"message": ...}` with Content-Type application/json: that is
 * what the docker CLI decodes and prints as "Error response from daemon: <message>" (any other
 * body is printed raw).
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { BodyTooLargeError } from './errors.js';

export function jsonErrorBody(message: string): Buffer {
  return Buffer.from(JSON.stringify({ message }) + '\n', 'utf8');
}

export function sendJsonError(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = jsonErrorBody(message);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

/** The same error on a raw socket (upgrade requests, which have no ServerResponse). */
export function sendRawJsonError(socket: Duplex, status: number, reason: string, message: string): void {
  const body = jsonErrorBody(message);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`
    + body.toString('utf8'),
  );
}

/**
 * Reads a whole body, refusing more than `limit` bytes. Past the limit the rest is drained and
 * dropped, so the connection can still carry the error answer.
 */
export function readBody(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stream.removeListener('data', onData);
        stream.resume();
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
    // A client that disconnects mid-body gives 'close' without 'end' (a no-op after 'end').
    stream.once('close', () => reject(new Error('connection closed before the body was complete')));
  });
}

/**
 * Sends a buffered (possibly rewritten) daemon answer: the daemon's status line and headers,
 * except that the length is now ours (Content-Length set, Transfer-Encoding dropped).
 */
export function sendBuffered(
  res: http.ServerResponse, status: number, statusMessage: string | undefined, rawHeaders: readonly string[], body: Buffer,
): void {
  const headers: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    headers.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  // 204 and 304 carry no body and no Content-Length.
  if (status !== 204 && status !== 304) headers.push('Content-Length', String(body.length));
  res.writeHead(status, statusMessage, headers);
  res.end(status === 204 || status === 304 ? undefined : body);
}

/** True for `application/json` with any parameters, as the daemon's CheckForJSON decides. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value.split(';')[0].trim().toLowerCase() === 'application/json';
}
