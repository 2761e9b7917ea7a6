/**
 * Gives freed C-heap memory back to the kernel once a burst of work is over, the way V8's memory
 * reducer does for the JavaScript heap when a process goes idle.
 *
 * Why: a long-running daemon's resident size is what a node operator sees. Socket reads (64 KB
 * each) and growing route tables leave glibc's heap fragmented; glibc returns only the top of the
 * heap by itself, so after 100 000 BGP routes ~19 MB of RSS growth stayed, of which ~14 MB was
 * freed memory (bench/results/bgp.md). After a full V8 collection (which frees the buffers still
 * held by dead JavaScript objects), malloc_trim(0) (native/malloc-trim.c) releases those pages.
 *
 *   const reducer = new MemoryReducer({ logger });
 *   reducer.activity();   // cheap; call at the end of each batch of work
 *   reducer.stop();
 *
 * Without the addon (no cc, not glibc) this does nothing, and says so once at debug level.
 */
import { join } from 'node:path';
import { Logger } from '../log.js';
import { buildNative, REPO_ROOT } from './build.js';

const SOURCE = join(REPO_ROOT, 'native', 'malloc-trim.c');
const ADDON = join(REPO_ROOT, 'dist', 'native', 'malloc-trim.node');

type TrimFn = () => boolean;
let cached: { trim?: TrimFn; problem?: string } | undefined;
let gcFn: (() => void) | null | undefined;

/**
 * A full V8 collection. Socket chunks and replaced table arrays are freed (to the C heap) only when
 * V8 collects their JavaScript objects; trimming before that would find little to give back.
 * Without --expose-gc, the flag can still be set at run time and `gc` taken from a new context.
 */
function fullGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return (gcFn = g);
  try {
    require('node:v8').setFlagsFromString('--expose-gc');
    gcFn = require('node:vm').runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** The addon's trim(), built on first use if set-up did not build it; undefined with the reason. */
export function loadMallocTrim(): { trim?: TrimFn; problem?: string } {
  if (cached) return cached;
  try {
    const path = buildNative(SOURCE, ADDON, ['-shared', '-fPIC']);
    const mod = require(path) as { trim?: TrimFn };
    cached = typeof mod.trim === 'function' ? { trim: mod.trim } : { problem: `${path} has no trim()` };
  } catch (err) {
    cached = { problem: (err as Error).message };
  }
  return cached;
}

export interface MemoryReducerOptions {
  logger: Logger;
  /** Quiet time after the last activity before trimming (default 1 s). */
  idleMs?: number;
  /** For tests: the trim function to use. */
  trim?: TrimFn;
  /** For tests: the timer (default: an unref'd setTimeout). */
  schedule?: (fn: () => void, ms: number) => { cancel(): void };
}

function unrefTimeout(fn: () => void, ms: number): { cancel(): void } {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
}

export class MemoryReducer {
  private timer?: { cancel(): void };
  private readonly schedule: (fn: () => void, ms: number) => { cancel(): void };
  private busy = false;
  private readonly idleMs: number;
  private readonly trim?: TrimFn;
  private readonly log: Logger;
  trims = 0;

  constructor(opts: MemoryReducerOptions) {
    this.idleMs = opts.idleMs ?? 1000;
    this.schedule = opts.schedule ?? unrefTimeout;
    this.log = opts.logger.child({ component: 'memory' });
    if (opts.trim) this.trim = opts.trim;
    else {
      const t = loadMallocTrim();
      this.trim = t.trim;
      if (t.problem) this.log.debug('freed memory is not given back to the kernel', { reason: t.problem });
    }
  }

  /** Marks work done; a trim follows once `idleMs` pass without more. */
  activity(): void {
    if (!this.trim) return;
    this.busy = true;
    if (!this.timer) this.arm();
  }

  private arm(): void {
    this.busy = false;
    this.timer = this.schedule(() => this.check(), this.idleMs);
  }

  private check(): void {
    this.timer = undefined;
    if (this.busy) { this.arm(); return; }
    const before = process.memoryUsage.rss();
    const t0 = performance.now();
    fullGc()?.();
    this.trim!();
    this.trims++;
    this.log.debug('gave freed memory back', { rssBeforeMB: +(before / 2 ** 20).toFixed(1), rssAfterMB: +(process.memoryUsage.rss() / 2 ** 20).toFixed(1), ms: +(performance.now() - t0).toFixed(2) });
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
