/**
 * The memory reducer: the real malloc-trim addon (built with cc, loaded into this process) gives
 * freed heap pages back to the kernel, and the reducer trims once per burst, after a quiet spell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadMallocTrim, MemoryReducer } from '../../src/native/memory-reducer.js';
import { createLogger } from '../../src/log.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const rssMB = () => process.memoryUsage.rss() / 2 ** 20;
const logger = createLogger({ level: 'error' });

test('the addon builds, loads and gives the pages of freed heap memory back', () => {
  const { trim, problem } = loadMallocTrim();
  assert.equal(problem, undefined);
  assert.equal(typeof trim, 'function');
  // 6000 x 10 KB from the C heap (below glibc's mmap threshold); free every other one, so the
  // holes cannot coalesce into the top of the heap that glibc would release by itself.
  let bufs: Array<Buffer | undefined> = Array.from({ length: 6000 }, () => Buffer.alloc(10_000, 1));
  for (let i = 0; i < bufs.length; i += 2) bufs[i] = undefined;
  gc();
  gc();
  const before = rssMB();
  trim!();
  const after = rssMB();
  assert.ok(before - after > 10, `RSS ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB after trim (~23 MB of holes)`);
  assert.equal(bufs.filter(Boolean).length, 3000); // the survivors were alive throughout
  bufs = [];
});

test('the reducer trims once after a burst, only when a whole idle period passed without activity', () => {
  let trims = 0;
  const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const fire = () => { const t = timers.shift(); assert.ok(t, 'a timer is pending'); if (!t.cancelled) t.fn(); };
  const r = new MemoryReducer({
    logger, idleMs: 1000, trim: () => { trims++; return true; },
    schedule: (fn, ms) => { const t = { fn, ms, cancelled: false }; timers.push(t); return { cancel: () => { t.cancelled = true; } }; },
  });
  r.activity();
  r.activity();
  assert.equal(timers.length, 1, 'one timer per burst, however many activities');
  assert.equal(timers[0]!.ms, 1000);
  r.activity(); // more work before the period ends
  fire();
  assert.equal(trims, 0, 'no trim: there was activity during the period');
  assert.equal(timers.length, 1, 'the period starts again');
  fire();
  assert.equal(trims, 1, 'a quiet period: one trim');
  assert.equal(timers.length, 0, 'and nothing more is scheduled');
  r.activity();
  r.stop();
  assert.equal(timers[0]!.cancelled, true, 'stop() cancels the pending check');
});
