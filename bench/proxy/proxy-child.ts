/**
 * Runs the proxy in its own process for the benchmark (so the measuring client does not share
 * its event loop). argv: <dockerSocket> [proxy|proxy-core|relay]. "proxy" is the proxy as shipped
 * (fast path on), "proxy-core" the same with `fastPath: false` (every request through Node's http
 * server and client, as before the fast path), "relay" a bare byte relay in Node (no HTTP), the
 * floor any Node proxy process pays on this machine. Prints the bound address as one JSON line,
 * runs until stdin closes.
 */
import net from 'node:net';
import { startProxy } from '../../proxy/server.js';
import { createLogger } from '../../src/log.js';

function startRelay(dockerSocket: string): Promise<{ address: string; close(): Promise<void> }> {
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect(dockerSocket);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  })));
}

async function main(): Promise<void> {
  const dockerSocket = process.argv[2];
  const mode = process.argv[3] ?? 'proxy';
  if (!dockerSocket || !['proxy', 'proxy-core', 'relay'].includes(mode)) throw new Error('usage: proxy-child <dockerSocket> [proxy|proxy-core|relay]');
  const proxy = mode === 'relay'
    ? await startRelay(dockerSocket)
    : await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket, logger: createLogger({ level: 'error' }), fastPath: mode === 'proxy' });
  process.stdout.write(JSON.stringify({ address: proxy.address }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => { void proxy.close().then(() => process.exit(0)); });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
