/**
 * The native route programmer (native/calico-fib.c): locating/building it and one worker process.
 *
 * Why a C helper: Node has no AF_NETLINK socket, the `netlink` addon crashed the process (see
 * fib.ts), and `ip -batch` waits for the kernel's ACK of each route before reading the next line.
 * The helper packs many RTM_NEWROUTE/RTM_DELROUTE messages into each sendmsg(), asks an ACK only
 * of the last one (failures are always reported) and reads the answers in bulk. It runs as a
 * separate process, so a fault in it cannot take the BGP sessions down:
 * it exits, its unanswered requests are reported as failed, and KernelFib starts a new one.
 * Protocol: see the header of native/calico-fib.c.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { buildNative, REPO_ROOT } from '../../src/native/build.js';
import { Logger } from '../../src/log.js';

export const NATIVE_SOURCE = join(REPO_ROOT, 'native', 'calico-fib.c');
export const NATIVE_BINARY = join(REPO_ROOT, 'dist', 'native', 'calico-fib');

export interface FibChange {
  prefix: string;
  /** '' deletes; else 'blackhole' or 'via X', 'via X dev tunl0 onlink', 'nexthop ... nexthop ...'. */
  spec: string;
}
export interface FibFailure { cmd: FibChange; error: string }

/** What the rest of fib.ts needs from a worker process (the `ip -batch` one or the native one). */
export interface FibWorker {
  readonly busy: number;
  readonly linesSent: number;
  readonly exited: boolean;
  send(cmds: FibChange[]): void;
  stop(): Promise<void>;
}

/**
 * Returns the path of a built, working helper, or throws with the reason it is not usable.
 * Builds it (`cc -O2`) when the binary is missing or older than its source; the build writes to a
 * temporary name and renames, so speakers starting at the same time never run a half-written file.
 * "Working" = it answers a sync request in this process's network namespace (so it could open a
 * NETLINK_ROUTE socket here).
 */
export function ensureNativeProgrammer(prebuilt?: string, netns?: string): string {
  const binary = prebuilt ?? buildNative(NATIVE_SOURCE, NATIVE_BINARY);
  const [cmd, args] = commandLine(binary, netns);
  const r = spawnSync(cmd, args, { input: 's 1\n', encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || r.stdout !== 's 1\n') {
    throw new Error(`${binary} self-check failed (exit ${r.status}, ${r.error?.message ?? (r.stderr.trim() || JSON.stringify(r.stdout))})`);
  }
  return binary;
}

const TABLE_MAIN = 254;

/** The helper itself, or through nsenter (which execs it, so the pid is the helper's) into a named namespace. */
function commandLine(binary: string, netns?: string): [string, string[]] {
  return netns ? ['nsenter', [`--net=/run/netns/${netns}`, binary]] : [binary, []];
}

/**
 * Turns a spec as the RIB writes it into the helper's next-hop fields:
 *   'blackhole' -> 'blackhole'; 'via G' -> 'G'; 'via G dev D onlink' -> 'G@D!';
 *   'nexthop via G1 weight 1 nexthop via G2 dev D onlink weight 1' -> 'G1 G2@D!'.
 * Throws on anything else (the change is then reported as refused, as `ip` would).
 */
export function specToHops(spec: string): string {
  if (spec === 'blackhole') return spec;
  const t = spec.split(' ');
  const hops: string[] = [];
  let cur: { gw?: string; dev?: string; onlink: boolean } | undefined;
  const end = () => {
    if (!cur) return;
    if (!cur.gw) throw new Error(`next hop without gateway in '${spec}'`);
    hops.push(cur.gw + (cur.dev ? `@${cur.dev}${cur.onlink ? '!' : ''}` : ''));
    if (cur.onlink && !cur.dev) throw new Error(`onlink without dev in '${spec}'`);
    cur = undefined;
  };
  for (let i = 0; i < t.length; i++) {
    const w = t[i]!;
    if (w === 'nexthop') { end(); cur = { onlink: false }; continue; }
    cur ??= { onlink: false };
    if (w === 'via' && t[i + 1]) cur.gw = t[++i];
    else if (w === 'dev' && t[i + 1]) cur.dev = t[++i];
    else if (w === 'onlink') cur.onlink = true;
    else if (w === 'weight' && t[i + 1] === '1') i++;
    else throw new Error(`unsupported route spec '${spec}'`);
  }
  end();
  if (hops.length === 0 || hops.length > 16) throw new Error(`unsupported route spec '${spec}'`);
  return hops.join(' ');
}

interface Batch { firstSeq: number; lines: FibChange[]; syncSeq: number; failed: FibFailure[] }

/** One calico-fib process; same contract as the `ip -batch` worker in fib.ts. */
export class NativeWorker implements FibWorker {
  private child: ChildProcess;
  private seq = 0;
  private inflight: Batch[] = [];
  private outBuf = '';
  private readonly hopsCache = new Map<string, string>();
  private readonly prefix: string;
  exited = false;

  constructor(bin: string, private readonly onBatchDone: (failed: FibFailure[]) => void, private readonly log: Logger, netns?: string, table = TABLE_MAIN, proto = 12, metric = 32) {
    this.prefix = ` ${table} ${proto} ${metric}`;
    const [cmd, args] = commandLine(bin, netns);
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.on('error', (err) => this.log.error('native fib worker stdin failed', { error: err }));
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => this.onStdout(d));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => this.log.error('native fib worker', { stderr: d.trim() }));
    this.child.on('error', (err) => this.log.error('native fib worker failed to run', { error: err }));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      if (this.inflight.length === 0) return;
      this.log.error('native fib worker exited with work in flight', { code, signal });
      const lost = this.inflight.splice(0);
      for (const b of lost) {
        const answered = new Set(b.failed.map((f) => f.cmd));
        this.onBatchDone([...b.failed, ...b.lines.filter((c) => !answered.has(c)).map((cmd) => ({ cmd, error: 'calico-fib exited' }))]);
      }
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get busy(): number {
    return this.inflight.length;
  }

  get linesSent(): number {
    return this.seq;
  }

  send(cmds: FibChange[]): void {
    const batch: Batch = { firstSeq: this.seq + 1, lines: cmds, syncSeq: 0, failed: [] };
    let text = '';
    for (const c of cmds) {
      const seq = ++this.seq;
      if (c.spec === '') { text += `d ${seq} ${c.prefix}${this.prefix}\n`; continue; }
      let hops = this.hopsCache.get(c.spec);
      if (hops === undefined) {
        try { hops = specToHops(c.spec); } catch (err) { batch.failed.push({ cmd: c, error: (err as Error).message }); continue; }
        if (this.hopsCache.size > 10_000) this.hopsCache.clear();
        this.hopsCache.set(c.spec, hops);
      }
      text += `r ${seq} ${c.prefix}${this.prefix} ${hops}\n`;
    }
    batch.syncSeq = ++this.seq;
    text += `s ${batch.syncSeq}\n`;
    this.inflight.push(batch);
    // A plain string write: reusing pooled Buffers here was tried and changed nothing in the
    // speaker's RSS per route (it only added their own 1 MB), see bench/results/bgp.md.
    this.child.stdin!.write(text);
  }

  private onStdout(d: string): void {
    this.outBuf += d;
    let start = 0;
    let nl: number;
    while ((nl = this.outBuf.indexOf('\n', start)) >= 0) {
      const line = this.outBuf.slice(start, nl);
      start = nl + 1;
      const sp1 = line.indexOf(' ');
      const kind = line.slice(0, sp1);
      const sp2 = line.indexOf(' ', sp1 + 1);
      const seq = Number(sp2 < 0 ? line.slice(sp1 + 1) : line.slice(sp1 + 1, sp2));
      if (kind === 's') {
        const b = this.inflight[0];
        if (!b || b.syncSeq !== seq) { this.log.error('native fib worker: unexpected sync', { seq }); continue; }
        this.inflight.shift();
        this.onBatchDone(b.failed);
      } else if (kind === 'e') {
        const b = this.inflight.find((x) => seq >= x.firstSeq && seq < x.syncSeq);
        if (!b) { this.log.error('native fib worker: error for an unknown request', { line }); continue; }
        // "e <seq> <errno> <text>": keep the text, as `ip` would print it.
        const sp3 = line.indexOf(' ', sp2 + 1);
        b.failed.push({ cmd: b.lines[seq - b.firstSeq]!, error: sp3 < 0 ? line : line.slice(sp3 + 1) });
      } else {
        this.log.error('native fib worker: unexpected output', { line });
      }
    }
    this.outBuf = this.outBuf.slice(start);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin!.end();
    });
  }
}
