/** Child-process side of speaker-proc.ts: relay to etcd, run the speaker, answer IPC calls. */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BgpSpeaker, formatPeerStatus } from '../../../node/bgp/speaker.js';
import { connectKV } from '../../../src/datastore/connect.js';
import { createLogger } from '../../../src/log.js';
import { AFI_IPV4, AFI_IPV6 } from '../../../node/bgp/codec/constants.js';

async function main(): Promise<void> {
  const port = Number(process.env.BGP_ETCD_PORT);
  const relayPath = process.env.BGP_RELAY!;
  // 127.0.0.1:<port> inside this namespace -> Unix socket -> the test's etcd.
  const relay = net.createServer((c) => {
    const up = net.connect(relayPath);
    c.pipe(up); up.pipe(c);
    const done = () => { c.destroy(); up.destroy(); };
    c.on('error', done); up.on('error', done); c.on('close', done); up.on('close', done);
  });
  await new Promise<void>((r) => relay.listen(port, '127.0.0.1', () => r()));
  const logger = createLogger({ base: { node: process.env.BGP_NODE } });
  const kv = connectKV({ endpoints: [`http://127.0.0.1:${port}`], isDefault: false }, 'daemon');
  const opts = JSON.parse(process.env.BGP_OPTS ?? '{}') as Record<string, unknown>;
  const speaker = new BgpSpeaker({ ...opts, kv, logger, nodeName: process.env.BGP_NODE! });
  const startP = speaker.start().then(() => speaker.ready);
  startP.catch((err) => { logger.error('speaker failed to start', { error: err as Error }); process.exit(3); });

  process.on('message', async (m: { id: number; cmd: string; arg?: { graceful?: boolean; afi?: number } }) => {
    const reply = (result: unknown) => process.send!({ id: m.id, result });
    try {
      switch (m.cmd) {
        case 'ready': await startP; return reply(true);
        case 'status': return reply(speaker.peerStatus());
        case 'statusText': return reply(formatPeerStatus(speaker.peerStatus()));
        case 'routes': return reply(speaker.routes(m.arg?.afi === 6 ? AFI_IPV6 : AFI_IPV4));
        case 'fibSettled': await speaker.fibSettled(); return reply(true);
        case 'refresh': speaker.refreshAll(); return reply(true);
        case 'memory': {
          const g = (globalThis as { gc?: () => void }).gc;
          if (g) { g(); g(); }
          const mu = process.memoryUsage();
          return reply({ rss: mu.rss, heap: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, arrayBuffers: mu.arrayBuffers, tables: speaker.rib.tableBytes });
        }
        case 'smaps': {
          // Resident memory by mapping (for the benchmark's memory breakdown).
          const text = (await import('node:fs')).readFileSync('/proc/self/smaps', 'utf8');
          const out: Record<string, number> = {};
          let name = '';
          for (const line of text.split('\n')) {
            const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
            if (head) { name = head[1] || '[anon]'; continue; }
            const m = /^Rss:\s+(\d+) kB/.exec(line);
            if (m) out[name] = (out[name] ?? 0) + Number(m[1]);
          }
          return reply(out);
        }
        case 'waitRoutes': {
          // Benchmark probe: when did the RIB hold `count` routes from `peer`, and the kernel all of them?
          const { peer, count } = m.arg as unknown as { peer: string; count: number };
          const p = speaker.peer(peer);
          if (!p) throw new Error(`no peer ${peer}`);
          // How long the event loop was ever blocked while routes were coming in (keepalives
          // and hold timers depend on it).
          const h = monitorEventLoopDelay({ resolution: 5 });
          h.enable();
          while (p.routeCount(AFI_IPV4) < count) await new Promise((r) => setTimeout(r, 2));
          const tRib = Date.now();
          await speaker.fibSettled();
          const tFib = Date.now();
          h.disable();
          return reply({ tRib, tFib, established: p.state === 'Established' ? p.since.getTime() : 0, maxLoopDelayMs: h.max / 1e6, state: p.state });
        }
        case 'stop':
          await speaker.stop({ graceful: m.arg?.graceful ?? false });
          kv.close();
          reply(true);
          relay.close();
          setTimeout(() => process.exit(0), 50);
          return;
        default: throw new Error(`unknown command ${m.cmd}`);
      }
    } catch (err) {
      process.send!({ id: m.id, error: (err as Error).message });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

void main();
