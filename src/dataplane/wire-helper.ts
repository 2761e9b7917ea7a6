/**
 * The native wiring helper (native/calico-wire.c): one long-lived process that creates a
 * workload's veth and configures both of its ends through netlink, in the host namespace and
 * inside the container's, with no process spawned per container.
 *
 * Why a C helper: wiring with `ip` takes a process in each namespace (about 2 ms per spawn on the
 * reference machine, ~11 ms per container in all), while the netlink work is microseconds. Node
 * has no AF_NETLINK sockets and cannot move a thread into another namespace; the `netlink` addon
 * crashed the process (node/bgp/fib.ts). Protocol: see the header of native/calico-wire.c.
 *
 * The process is started on first use and started again after it exits; its requests are answered
 * in order. When idle it does not keep Node's event loop alive (a CLI can exit without closing it).
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { buildNative, REPO_ROOT } from '../native/build.js';
import { CalicoError } from '../errors.js';
import { Netns } from './netns.js';

export const WIRE_HELPER_SOURCE = join(REPO_ROOT, 'native', 'calico-wire.c');
export const WIRE_HELPER_BINARY = join(REPO_ROOT, 'dist', 'native', 'calico-wire');

/** Where a helper request failed; see native/calico-wire.c. */
export type WireHelperStage = 'netns' | 'exists' | 'veth' | 'host' | 'sysctl' | 'container' | 'input' | 'helper';

export class WireHelperError extends CalicoError {
  constructor(readonly stage: WireHelperStage, readonly errno: number, message: string) {
    super(message);
  }
}

export interface HostSideRequest {
  containerNetnsPath: string;
  hostIfName: string;
  containerIfName: string;
  hostMac: string;
  containerMac: string;
  /** Turn off the kernel's IPv6 address generation on the host side (we add the link-local ourselves). */
  addrGenModeNone: boolean;
  /** e.g. fe80::ecee:eeff:feee:eeee/64, added without DAD; undefined for none. */
  linkLocal?: string;
  routeProtocol: number;
  /** Host routes (addresses or prefixes) through the host side. */
  routes: string[];
  /** Written in the host namespace after the interface exists: key under /proc/sys -> value. */
  sysctls: Array<{ key: string; value: string }>;
}

export interface ContainerSideRequest {
  containerNetnsPath: string;
  containerIfName: string;
  /** With prefix length: 10.65.0.1/32, fd00::1/128. */
  addresses: string[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  /** Set disable_ipv6=0 on the interface first (Docker creates namespaces with IPv6 off). */
  enableIpv6: boolean;
}

/** A field of the line protocol: no spaces, commas or newlines, never empty. */
function field(v: string, what: string): string {
  if (v === '' || /[\s,]/.test(v)) throw new WireHelperError('input', 22, `${what} '${v}' cannot be sent to calico-wire`);
  return v;
}
const list = (vs: string[], what: string) => (vs.length ? vs.map((v) => field(v, what)).join(',') : '-');

/** Builds (if needed) and self-checks the helper; throws with the reason it cannot be used. */
export function ensureWireHelper(prebuilt?: string): string {
  const binary = prebuilt ?? buildNative(WIRE_HELPER_SOURCE, WIRE_HELPER_BINARY);
  const r = spawnSync(binary, [], { input: 'p 1\n', encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || r.stdout !== 'ok 1\n') {
    throw new CalicoError(`${binary} self-check failed (exit ${r.status}, ${r.error?.message ?? (r.stderr.trim() || JSON.stringify(r.stdout))})`);
  }
  return binary;
}

interface Waiter { resolve(): void; reject(e: Error): void; child: ChildProcess }

export class WireHelper {
  private child?: ChildProcess;
  private buf = '';
  private seq = 0;
  private readonly waiting = new Map<number, Waiter>();
  private stderrTail = '';

  /** `binary` from ensureWireHelper(); `hostNetns` the namespace of the host side (default: ours). */
  constructor(private readonly binary: string, private readonly hostNetns?: Netns) {}

  host(r: HostSideRequest): Promise<void> {
    const sysctls = r.sysctls.map((s) => {
      if (!/^[A-Za-z0-9_./-]+$/.test(s.key) || s.key.includes('..') || !/^[A-Za-z0-9_.:-]+$/.test(s.value)) {
        throw new WireHelperError('input', 22, `sysctl ${s.key}=${s.value} cannot be sent to calico-wire`);
      }
      return `${s.key}=${s.value}`;
    });
    return this.send(['h', field(r.containerNetnsPath, 'netns path'), field(r.hostIfName, 'interface'), field(r.containerIfName, 'interface'),
      field(r.hostMac, 'MAC'), field(r.containerMac, 'MAC'), r.addrGenModeNone ? '1' : '0', r.linkLocal ? field(r.linkLocal, 'address') : '-',
      String(r.routeProtocol), list(r.routes, 'route'), ...sysctls]);
  }

  container(r: ContainerSideRequest): Promise<void> {
    return this.send(['c', field(r.containerNetnsPath, 'netns path'), field(r.containerIfName, 'interface'), list(r.addresses, 'address'),
      r.ipv4Gateway ? field(r.ipv4Gateway, 'gateway') : '-', r.ipv6Gateway ? field(r.ipv6Gateway, 'gateway') : '-', r.enableIpv6 ? '1' : '0']);
  }

  /** Ends the process (it exits when its input closes). */
  async close(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c) return;
    c.stdin?.end();
    if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
  }

  private send(fields: string[]): Promise<void> {
    const [op, ...rest] = fields;
    const seq = ++this.seq;
    const child = (this.child ??= this.spawnChild());
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject, child });
      this.setRef(child, true);
      child.stdin!.write(`${op} ${seq} ${rest.join(' ')}\n`);
    });
  }

  private spawnChild(): ChildProcess {
    const child = spawn(this.binary, this.hostNetns ? [this.hostNetns.path] : [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.buf = '';
    this.stderrTail = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => this.onData(d));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { this.stderrTail = (this.stderrTail + d).slice(-500); });
    child.stdin!.on('error', () => undefined);
    child.once('error', (err) => this.onExit(child, err.message));
    child.once('exit', (code, signal) => this.onExit(child, `exit ${code ?? signal}`));
    return child;
  }

  private onData(d: string): void {
    this.buf += d;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const m = /^(ok|e) (\d+)(?: (\S+) (\d+) (.*))?$/.exec(line);
      if (!m) continue;
      const w = this.waiting.get(Number(m[2]));
      if (!w) continue;
      this.waiting.delete(Number(m[2]));
      if (m[1] === 'ok') w.resolve();
      else w.reject(new WireHelperError(m[3] as WireHelperStage, Number(m[4]), m[5]!));
    }
    if (this.waiting.size === 0 && this.child) this.setRef(this.child, false);
  }

  private onExit(child: ChildProcess, how: string): void {
    if (this.child === child) this.child = undefined;
    const err = new WireHelperError('helper', 0, `calico-wire ended (${how})${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`);
    for (const [seq, w] of this.waiting) {
      if (w.child !== child) continue;
      this.waiting.delete(seq);
      w.reject(err);
    }
  }

  /** Only a helper with requests in flight keeps the event loop alive. */
  private setRef(child: ChildProcess, on: boolean): void {
    for (const s of [child.stdin, child.stdout, child.stderr] as Array<Socket | null>) {
      if (on) s?.ref?.(); else s?.unref?.();
    }
    if (on) child.ref(); else child.unref();
  }
}
