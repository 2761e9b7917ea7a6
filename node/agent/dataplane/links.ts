/**
 * Which workload interfaces exist, and when they appear or go. An endpoint can be written to
 * the datastore before its veth exists (or the other way round), so routes and sysctls are
 * programmed when both are there. `ip -o monitor link` (one long-lived process) tells us about
 * changes as they happen; each notice triggers a re-list, debounced.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { Netns, LinkInfo, listLinks, commandInNetns } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';

export class LinkTracker {
  private links = new Map<string, LinkInfo>();
  private readonly firstSeen = new Map<string, number>();
  private monitor?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly netns: Netns | undefined,
    private readonly prefix: () => string,
    private readonly log: Logger,
    private readonly onChange: () => void,
  ) {}

  get current(): ReadonlyMap<string, LinkInfo> {
    return this.links;
  }

  /** Milliseconds since we first saw the interface (Infinity when unknown). */
  age(name: string): number {
    const t = this.firstSeen.get(name);
    return t === undefined ? Number.POSITIVE_INFINITY : Date.now() - t;
  }

  async start(): Promise<void> {
    this.startMonitor();
    await this.refresh();
  }

  /** Re-lists the interfaces. Returns true when something changed. */
  async refresh(): Promise<boolean> {
    const now = Date.now();
    const list = await listLinks({ netns: this.netns, prefix: this.prefix() });
    const next = new Map(list.map((l) => [l.name, l]));
    let changed = next.size !== this.links.size;
    for (const [n, l] of next) {
      const o = this.links.get(n);
      if (!o || o.ifindex !== l.ifindex || o.up !== l.up) changed = true;
      if (!o || o.ifindex !== l.ifindex) this.firstSeen.set(n, now);
    }
    for (const n of [...this.firstSeen.keys()]) if (!next.has(n)) this.firstSeen.delete(n);
    this.links = next;
    return changed;
  }

  private startMonitor(): void {
    if (this.stopped) return;
    // The shell ends ip when our end of its stdin closes, i.e. when we exit, even by SIGKILL:
    // a bare `ip monitor` would otherwise live on until its next write.
    const [cmd, args] = commandInNetns(this.netns, 'sh', ['-c', 'ip -o monitor link & p=$!; read _; kill $p']);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdin!.on('error', () => undefined);
    this.monitor = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      if (d.includes(this.prefix())) this.kick();
    });
    child.once('error', () => undefined);
    child.once('exit', () => {
      if (this.monitor === child) this.monitor = undefined;
      if (!this.stopped) {
        this.log.warn('ip monitor exited; restarting it');
        setTimeout(() => { this.startMonitor(); this.kick(); }, 1000).unref();
      }
    });
  }

  private kick(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onChange();
    }, 20);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const m = this.monitor;
    this.monitor = undefined;
    m?.stdin?.end();
  }
}
