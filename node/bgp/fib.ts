/**
 * Kernel route programming: `proto bird` (12) routes with a fixed metric, written by long-lived
 * children: the native netlink programmer (native/calico-fib.c, see the end of this comment) when
 * it is usable, else `ip -force -batch -`.
 *
 * Why this mechanism (measured on the 2-core target, IPv4 /32 `via` routes into a fresh netns; the
 * machine is shared, so single runs vary by +-30%):
 *   - Plain Node has no AF_NETLINK socket. The `netlink` npm package (0.3.0, native addon, "early
 *     stage") aborted the whole process with an uncaught `Napi::Error` ("terminate called") after a
 *     few hundred RTM_NEWROUTE messages, even with one request in flight: a crash would take every
 *     BGP session down with it, so it is not used.
 *   - `ip -batch`: ~11 us per route in one process, whatever the form (replace/add/dev/nhid all
 *     1.0-1.2 s per 100k); the kernel work runs in the `ip` process, off our event loop.
 *   - two `ip` processes fed disjoint halves use both cores: 100k in 0.65-1.1 s (vs 1.1-1.5 s).
 *   - one `ip` process slows down as it ages (1M lines in one process: 16.9 s; the same lines in
 *     ten processes of 100k: 13.3 s), so each worker is replaced after RECYCLE_LINES lines; with
 *     that, 1M routes take 15.0 s with two workers and 22.5 s with one.
 *   So: two workers by default, sharded by a hash of the prefix (each prefix always goes to the
 *   same worker, so its changes keep their order), each replaced by a fresh `ip` after
 *   RECYCLE_LINES lines once its in-flight batches are acknowledged.
 * Completion: `ip` reports each failed line on stderr as "Command failed -:<line>", unbuffered.
 * After each batch we send a line that always fails without touching the kernel (an unknown
 * object), so its report tells us that every earlier line of that worker is done, and any failure
 * report in between names the exact line (and so the exact prefix) that the kernel refused.
 * Metric: always the same (32, as BIRD 2 writes), so `replace` only ever replaces our own route and
 * never a connected route or Felix's (metric 0/1024) with the same destination.
 *
 * Native programmer (native/calico-fib.c, driven by fib-native.ts), preferred since: a process
 * that packs a buffer of netlink requests into each sendmsg() and asks an ACK only of the last one
 * (failures are always reported, with the request's sequence number), so nothing waits per route.
 * 100k /32s: ~0.45 s of kernel time in one process vs ~1.0 s for `ip -batch` (and 0.6 s when
 * every request is ACKed); in the speaker, all 100k in the kernel 0.6-0.7 s after Established on
 * a quiet machine, vs 1.1-2.2 s with the `ip` workers; bench/results/bgp.md has the comparison
 * with BIRD. It does not slow down with age, so it is not recycled. It is a separate process (not
 * an addon) so that a fault in it cannot take the BGP sessions down: its unanswered requests are
 * reported as failed, as for `ip`, and a new one is started. It is built with `cc` on first use
 * into dist/native/ and used when it builds and passes a self-check; otherwise (no compiler, say)
 * the `ip` workers are used and a warning says so. CALICO_BGP_FIB=ip|native forces one (native:
 * no fallback, start-up fails). Both kinds of worker have the same contract (batches, per-line
 * failures, completion per batch), so the sharding, ordering and back-pressure below serve both.
 */
import { spawn, ChildProcess, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Logger } from '../../src/log.js';
import { FibError } from './errors.js';
import { ensureNativeProgrammer, NativeWorker, FibWorker } from './fib-native.js';

export const RTPROT_BIRD = 12;
export const ROUTE_METRIC = 32;
const SENTINEL = 'calico-bgp-fib-sync';
const BATCH_LINES = 2000;
const MAX_BATCHES_IN_FLIGHT = 3;
const RECYCLE_LINES = 100_000;
/** The native worker does not slow down with age; recycle only to keep sequence numbers small. */
const NATIVE_RECYCLE_LINES = 1 << 30;

export interface FibCommand {
  /** 'a.b.c.d/n' or v6 prefix text. */
  prefix: string;
  /** '' deletes; else 'blackhole' or 'via X', 'via X dev tunl0 onlink', 'nexthop ... nexthop ...'. */
  spec: string;
}

interface Batch { firstLine: number; lines: FibCommand[]; sentinelLine: number; failed?: Array<{ cmd: FibCommand; error: string }> }

class IpWorker implements FibWorker {
  private child: ChildProcess;
  private lineNo = 0;
  private inflight: Batch[] = [];
  private errBuf = '';
  private lastErrors: string[] = [];
  exited = false;
  constructor(ipBin: string, private readonly onBatchDone: (failed: Array<{ cmd: FibCommand; error: string }>) => void, private readonly log: Logger, netns?: string) {
    this.child = spawn(ipBin, [...(netns ? ['-n', netns] : []), '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stdin!.on('error', (err) => this.log.error('ip worker stdin failed', { error: err }));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => this.onStderr(d));
    this.child.on('exit', (code) => {
      this.exited = true;
      if (this.inflight.length === 0) return;
      // Unexpected: report every unacknowledged line as failed so that nothing waits forever and
      // the RIB knows those routes are not (known to be) installed.
      this.log.error('ip worker exited with work in flight', { code });
      const lost = this.inflight.splice(0);
      for (const b of lost) this.onBatchDone(b.lines.map((cmd) => ({ cmd, error: 'ip exited' })));
    });
  }

  get busy(): number {
    return this.inflight.length;
  }

  get linesSent(): number {
    return this.lineNo;
  }

  send(cmds: FibCommand[]): void {
    const batch: Batch = { firstLine: this.lineNo + 1, lines: cmds, sentinelLine: 0 };
    let text = '';
    for (const c of cmds) {
      text += c.spec === ''
        ? `route del ${c.prefix} proto bird metric ${ROUTE_METRIC}\n`
        : c.spec === 'blackhole'
          ? `route replace blackhole ${c.prefix} proto bird metric ${ROUTE_METRIC}\n`
          : `route replace ${c.prefix} proto bird metric ${ROUTE_METRIC} ${c.spec}\n`;
    }
    this.lineNo += cmds.length;
    text += `${SENTINEL}\n`;
    batch.sentinelLine = ++this.lineNo;
    this.inflight.push(batch);
    this.child.stdin!.write(text);
  }

  private onStderr(d: string): void {
    this.errBuf += d;
    let nl: number;
    while ((nl = this.errBuf.indexOf('\n')) >= 0) {
      const line = this.errBuf.slice(0, nl);
      this.errBuf = this.errBuf.slice(nl + 1);
      const m = /^Command failed -:(\d+)$/.exec(line);
      if (!m) { this.lastErrors.push(line); continue; }
      const n = Number(m[1]);
      const msg = this.lastErrors.join('; ');
      this.lastErrors = [];
      const b = this.inflight[0];
      if (!b) continue;
      if (n === b.sentinelLine) {
        this.inflight.shift();
        this.onBatchDone(b.failed ?? []);
      } else if (n >= b.firstLine && n < b.sentinelLine) {
        (b.failed ??= []).push({ cmd: b.lines[n - b.firstLine]!, error: msg });
      }
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin!.end();
    });
  }
}

export interface FibOptions {
  logger: Logger;
  workers?: number;
  ipBin?: string;
  /** Replace a worker after this many lines (default RECYCLE_LINES; ip workers only). */
  recycleLines?: number;
  /** 'auto' (default, or CALICO_BGP_FIB): native programmer if usable, else ip workers. */
  mode?: 'auto' | 'native' | 'ip';
  /** Path of the native programmer binary (default: built from native/calico-fib.c). */
  nativeBin?: string;
  /** Program the routes of this named namespace (/run/netns/<name>) instead of our own (tests). */
  netns?: string;
}

export class KernelFib {
  private workers: FibWorker[] = [];
  private nativeBin?: string;
  private pending: FibCommand[][] = [];
  private readonly log: Logger;
  private waiters: Array<() => void> = [];
  /** Called when a batch completes, so the owner can feed more work. */
  onCapacity: () => void = () => undefined;
  /** Called for each change the kernel refused. */
  onFailure: (cmd: FibCommand, error: string) => void = () => undefined;
  changes = 0;
  failures = 0;

  constructor(private readonly opts: FibOptions) {
    this.log = opts.logger;
  }

  /** Which mechanism writes the routes ('native' or 'ip'); set by start(). */
  get mechanism(): 'native' | 'ip' {
    return this.nativeBin ? 'native' : 'ip';
  }

  start(): void {
    const mode = this.opts.mode ?? (process.env.CALICO_BGP_FIB as FibOptions['mode'] | undefined) ?? 'auto';
    if (mode !== 'ip') {
      try {
        this.nativeBin = ensureNativeProgrammer(this.opts.nativeBin, this.opts.netns);
        this.log.info('kernel routes are written by the native netlink programmer', { bin: this.nativeBin });
      } catch (err) {
        if (mode === 'native') throw new FibError(`native route programmer unusable: ${(err as Error).message}`, { hint: 'install gcc and libc6-dev, or set CALICO_BGP_FIB=ip' });
        this.log.warn('native route programmer unusable; kernel routes are written by ip -batch workers', { reason: (err as Error).message });
      }
    } else {
      this.log.info('kernel routes are written by ip -batch workers (CALICO_BGP_FIB=ip)');
    }
    const n = this.opts.workers ?? 2;
    for (let i = 0; i < n; i++) {
      this.pending.push([]);
      this.workers.push(this.spawnWorker(i));
    }
  }

  private spawnWorker(i: number): FibWorker {
    const done = (failed: Array<{ cmd: FibCommand; error: string }>) => {
      for (const f of failed) {
        this.failures++;
        this.log.warn('kernel refused a route change', { prefix: f.cmd.prefix, spec: f.cmd.spec, error: f.error });
        this.onFailure(f.cmd, f.error);
      }
      this.pump(i);
      this.onCapacity();
      this.checkIdle();
    };
    return this.nativeBin
      ? new NativeWorker(this.nativeBin, done, this.log, this.opts.netns, 254, RTPROT_BIRD, ROUTE_METRIC)
      : new IpWorker(this.opts.ipBin ?? 'ip', done, this.log, this.opts.netns);
  }

  /** True when another batch could be written right now. */
  get hasCapacity(): boolean {
    return this.workers.some((w, i) => w.busy < MAX_BATCHES_IN_FLIGHT && this.pending[i]!.length < BATCH_LINES);
  }

  get idle(): boolean {
    return this.workers.every((w, i) => w.busy === 0 && this.pending[i]!.length === 0);
  }

  /** Queues one change; written when its worker has room. */
  queue(cmd: FibCommand): void {
    const i = this.workers.length === 1 ? 0 : shard(cmd.prefix, this.workers.length);
    const p = this.pending[i]!;
    p.push(cmd);
    this.changes++;
    if (p.length >= BATCH_LINES) this.pump(i);
  }

  /** Writes whatever is queued (call after a burst of queue()). */
  flush(): void {
    for (let i = 0; i < this.workers.length; i++) this.pump(i);
  }

  private pump(i: number): void {
    let w = this.workers[i]!;
    const p = this.pending[i]!;
    const recycle = this.nativeBin ? NATIVE_RECYCLE_LINES : (this.opts.recycleLines ?? RECYCLE_LINES);
    if (p.length && (w.exited || w.linesSent >= recycle)) {
      // Swap in a fresh `ip` only when the old one has nothing in flight, so order is kept.
      if (w.busy > 0 && !w.exited) return;
      void w.stop();
      w = this.workers[i] = this.spawnWorker(i);
    }
    while (p.length && w.busy < MAX_BATCHES_IN_FLIGHT && !w.exited) {
      w.send(p.splice(0, BATCH_LINES));
    }
  }

  private checkIdle(): void {
    if (!this.idle) return;
    const ws = this.waiters;
    this.waiters = [];
    for (const r of ws) r();
  }

  /** Resolves when every queued change has been applied by the kernel. */
  settled(): Promise<void> {
    this.flush();
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  async stop(): Promise<void> {
    this.flush();
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

/**
 * Worker for a prefix: a hash of its text up to the last '.' or ':' (its /24, for IPv4 host
 * routes), so that neighbouring prefixes go to the same worker in order; the kernel inserts
 * neighbours into its FIB trie faster than scattered ones.
 */
function shard(prefix: string, n: number): number {
  let end = prefix.length;
  for (let i = prefix.length - 1; i >= 0; i--) { const c = prefix.charCodeAt(i); if (c === 46 || c === 58) { end = i; break; } }
  let h = 0;
  for (let i = 0; i < end; i++) h = (Math.imul(h, 31) + prefix.charCodeAt(i)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return ((h ^ (h >>> 16)) >>> 0) % n;
}

const execFileP = promisify(execFile);

export interface KernelRoute { prefix: string; spec: string }

/**
 * Our routes already in the kernel (from a previous run, left there on purpose so that a restart
 * does not interrupt forwarding). Read once at start-up with `ip -j`.
 */
export async function dumpOwnedRoutes(ipBin = 'ip'): Promise<KernelRoute[]> {
  const out: KernelRoute[] = [];
  for (const fam of ['-4', '-6']) {
    let stdout: string;
    try {
      ({ stdout } = await execFileP(ipBin, ['-j', fam, 'route', 'show', 'proto', 'bird'], { maxBuffer: 1 << 30 }));
    } catch (err) {
      throw new FibError(`cannot read kernel routes: ${(err as Error).message}`, { hint: 'the speaker needs iproute2 and CAP_NET_ADMIN' });
    }
    const list = stdout.trim() ? (JSON.parse(stdout) as Array<Record<string, unknown>>) : [];
    for (const r of list) {
      let dst = String(r.dst);
      if (dst === 'default') dst = fam === '-4' ? '0.0.0.0/0' : '::/0';
      if (!dst.includes('/')) dst += fam === '-4' ? '/32' : '/128';
      out.push({ prefix: dst, spec: specOf(r) });
    }
  }
  return out;
}

/** Rebuilds the spec text we would have written for a route shown by `ip -j`. */
export function specOf(r: Record<string, unknown>): string {
  if (r.type === 'blackhole') return 'blackhole';
  const hop = (h: Record<string, unknown>) => {
    const flags = (h.flags as string[] | undefined) ?? [];
    return h.dev === 'tunl0' && flags.includes('onlink') ? `via ${h.gateway} dev tunl0 onlink` : `via ${h.gateway}`;
  };
  const multi = r.nexthops as Array<Record<string, unknown>> | undefined;
  if (multi?.length) {
    return multi.map((h) => `nexthop ${hop(h)} weight 1`).sort().join(' ');
  }
  if (r.gateway) return hop(r);
  return `unknown`;
}
