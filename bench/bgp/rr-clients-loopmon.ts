/**
 * Preloaded (`node --require`) into our speaker's process by the reflector benchmark: measures how
 * long its event loop was ever blocked (keepalives and hold timers wait on it) and answers the
 * parent over the speaker child's IPC channel. The speaker child (test/bgp/lib/speaker-child.ts)
 * also answers "unknown command" to these messages; the parent takes the first reply per id, and
 * this listener is registered first, so that reply is this one.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();

process.on('message', (m: { id: number; cmd: string; arg?: { reset?: boolean } }) => {
  if (m?.cmd !== 'rrbench:loop') return;
  const r = { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, meanMs: h.mean / 1e6 };
  if (m.arg?.reset) h.reset();
  process.send!({ id: m.id, result: r });
});
