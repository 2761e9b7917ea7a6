/**
 * Test-side HTTP/2 over an upgraded connection, to drive BuildKit's endpoints on the daemon the
 * way buildx does: `POST /grpc` (we are the gRPC client) and `POST /session` (the daemon is the
 * gRPC client and we serve).
 */
import net from 'node:net';
import http2 from 'node:http2';

export interface Upgraded {
  socket: net.Socket;
  /** The status line and headers the client received, as text. */
  head: string;
}

/** Sends an upgrade request and resolves once the answer's header block has arrived. */
export function upgradeH2c(target: { path: string } | { port: number }, path: string, extraHeaders: string[] = []): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? net.connect(target.path) : net.connect(target.port, '127.0.0.1');
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n${extraHeaders.map((h) => h + '\r\n').join('')}\r\n`);
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onData);
      socket.pause();
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ socket, head: buf.subarray(0, end).toString('latin1') });
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** One unary gRPC call over an upgraded /grpc connection; resolves with the raw framed answer. */
export async function grpcCall(up: Upgraded, method: string, message: Buffer): Promise<{ status: string | undefined; body: Buffer }> {
  const client = http2.connect('http://localhost', { createConnection: () => up.socket });
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      req.on('response', (h) => { if (h['grpc-status'] !== undefined) status = String(h['grpc-status']); });
      req.on('trailers', (t) => { status = String(t['grpc-status']); });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
      req.on('error', reject);
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      req.end(frame);
    });
  } finally {
    client.close();
    up.socket.destroy();
  }
}

/**
 * Serves HTTP/2 on an upgraded /session connection; resolves with the first call the daemon
 * makes whose path satisfies `want` (answering Health/Check as SERVING meanwhile).
 */
export function serveSession(up: Upgraded, want: (path: string) => boolean): { firstCall: Promise<{ path: string; headers: http2.IncomingHttpHeaders }>; close(): void } {
  const server = http2.createServer();
  let settle: (v: { path: string; headers: http2.IncomingHttpHeaders }) => void = () => undefined;
  const firstCall = new Promise<{ path: string; headers: http2.IncomingHttpHeaders }>((resolve) => { settle = resolve; });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    const health = path === '/grpc.health.v1.Health/Check';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': health ? '0' : '12', 'grpc-message': 'test server' }));
    stream.on('error', () => { /* the daemon may cancel */ });
    // HealthCheckResponse{status: SERVING}
    stream.end(health ? Buffer.from([0, 0, 0, 0, 2, 8, 1]) : undefined);
    if (want(path)) settle({ path, headers });
  });
  server.emit('connection', up.socket);
  up.socket.resume();
  return { firstCall, close: () => { up.socket.destroy(); server.close(); } };
}
