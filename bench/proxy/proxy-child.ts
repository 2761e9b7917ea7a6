/**
 * Runs the proxy in its own process for the benchmark (so the measuring client does not share
 * its event loop). argv: <dockerSocket>. Prints the bound address as one JSON line, runs until
 * stdin closes.
 */
import { startProxy } from '../../proxy/server.js';
import { createLogger } from '../../src/log.js';

async function main(): Promise<void> {
  const dockerSocket = process.argv[2];
  if (!dockerSocket) throw new Error('usage: proxy-child <dockerSocket>');
  const proxy = await startProxy({ proxyListen: '127.0.0.1:0', dockerSocket, logger: createLogger({ level: 'error' }) });
  process.stdout.write(JSON.stringify({ address: proxy.address }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => { void proxy.close().then(() => process.exit(0)); });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
