/**
 * The node agent (what Felix did for calico-docker): datastore -> calculation -> dataplane.
 *
 *   DatastoreSyncer  snapshot + watch of /calico/v1/ and /calico/bgp/v1/host/, resync on failure
 *        |  updates (cheap: parsed and marked dirty)
 *   CalcGraph        local endpoints, their profiles/policies, IP sets across all hosts, pools...
 *        |  DesiredState (unchanged parts keep their identity)
 *   AgentDataplane   nftables (diff or atomic rebuild), interface sysctls, routes, tunl0
 *
 * One apply runs at a time; updates that arrive meanwhile are batched into the next one (the
 * same effect as Felix's batching, without a fixed delay). Nothing is written to the kernel
 * before the first snapshot is complete, so a restarted agent's first write is a consistent,
 * complete ruleset that atomically replaces the previous one. A periodic check (default 10 s)
 * compares the kernel with what was applied and repairs drift.
 */
import type { KV } from '../../src/datastore/kv.js';
import { keys, V1 } from '../../src/datastore/keys.js';
import type { Logger } from '../../src/log.js';
import { errorMessage } from '../../src/errors.js';
import { Netns, CALICO_ROUTE_PROTOCOL } from '../../src/dataplane/index.js';
import { DatastoreSyncer, KvUpdate } from './syncer.js';
import { CalcGraph, DesiredState } from './calc.js';
import { AgentDataplane, DriftReport } from './dataplane/index.js';
import { AgentMetrics } from './metrics.js';

export interface AgentOptions {
  /** A KV with watch: connectKV(cfg, 'daemon'). */
  kv: KV;
  nodeName: string;
  logger: Logger;
  /** Prometheus port on `metricsHost` (default 9091; 0 = no metrics endpoint). */
  metricsPort?: number;
  metricsHost?: string;
  /** Namespace to program (default: the one this process runs in). Tests use a "host" netns. */
  netns?: Netns;
  /** Drift check period (default 10 s; 0 = never). */
  checkIntervalMs?: number;
  routeProtocol?: number;
  /** How long routes on a new, unclaimed cali interface are left alone (default 10 s). */
  interfaceGraceMs?: number;
}

export interface AgentStatus {
  inSync: boolean;
  seenRevision: string;
  appliedRevision: string;
  localEndpoints: number;
  applies: number;
  lastApplyMs?: number;
  /** Where the last apply spent its time (ms): calc, then the dataplane steps. */
  lastApplyPhases?: Record<string, number>;
  driftRepairs: number;
  resyncs: number;
  lastError?: string;
}

interface RevisionWaiter {
  revision: bigint;
  resolve: () => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export class Agent {
  readonly ready: Promise<void>;
  readonly metrics = new AgentMetrics();
  /** Port the metrics endpoint listens on (after start), or undefined. */
  metricsBoundPort?: number;

  private readonly log: Logger;
  private readonly calc: CalcGraph;
  private readonly dataplane: AgentDataplane;
  private readonly syncer: DatastoreSyncer;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  private inSync = false;
  private started = false;
  private stopped = false;
  private running = false;
  private pending = false;
  private linksDirty = false;
  private checkRequested = false;
  private checkWaiters: Array<{ resolve: (r: DriftReport) => void; reject: (e: Error) => void }> = [];
  private seenRevision = 0n;
  private appliedRevision = -1n;
  private waiters: RevisionWaiter[] = [];
  private retryTimer?: NodeJS.Timeout;
  private checkTimer?: NodeJS.Timeout;
  private failures = 0;
  private applies = 0;
  private lastApplyMs?: number;
  private lastApplyPhases?: Record<string, number>;
  private driftRepairs = 0;
  private lastError?: string;
  private lastDesired?: DesiredState;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger.child({ component: 'agent', node: opts.nodeName });
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers that never await `ready` must not get an unhandled rejection.
    this.ready.catch(() => undefined);
    this.calc = new CalcGraph(opts.nodeName, this.log.child({ part: 'calc' }));
    this.dataplane = new AgentDataplane({
      netns: opts.netns,
      logger: this.log,
      routeProtocol: opts.routeProtocol ?? CALICO_ROUTE_PROTOCOL,
      interfaceGraceMs: opts.interfaceGraceMs ?? 10000,
      onLinksChanged: () => {
        this.linksDirty = true;
        this.kick();
      },
    });
    this.syncer = new DatastoreSyncer(
      opts.kv,
      [`${V1}/`, keys.bgpHostPrefix],
      {
        onUpdates: (u) => this.onUpdates(u),
        onInSync: (rev) => this.onInSync(rev),
        onResync: (reason) => {
          this.metrics.resyncs.inc();
          this.log.info('datastore resync', { reason });
        },
      },
      this.log.child({ part: 'syncer' }),
    );
  }

  /** Starts everything; resolves once the dataplane holds the first complete snapshot. */
  async start(): Promise<void> {
    if (this.started) return this.ready;
    this.started = true;
    try {
      const port = this.opts.metricsPort ?? 9091;
      if (port !== 0) this.metricsBoundPort = await this.metrics.serve(this.opts.metricsHost ?? '127.0.0.1', port);
      await this.dataplane.start('cali');
      await this.syncer.start();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.rejectReady(e);
      await this.stop();
      throw e;
    }
    this.setCheckInterval(this.opts.checkIntervalMs ?? 10000);
    return this.ready;
  }

  /** Sets how often the dataplane is checked for drift (0 = only when checkNow() is called). */
  setCheckInterval(ms: number): void {
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = undefined;
    if (ms <= 0 || this.stopped) return;
    const tick = () => {
      // ±10 % jitter, as Felix, so that nodes started together do not check in lock-step.
      this.checkTimer = setTimeout(() => {
        this.checkNow().catch((err) => this.log.warn('drift check failed', { error: errorMessage(err) }));
        tick();
      }, ms * (0.9 + Math.random() * 0.2));
      this.checkTimer.unref?.();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    await this.syncer.stop();
    await this.loopDone;
    await this.dataplane.close();
    await this.metrics.close();
    for (const w of this.waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new Error('agent stopped'));
    }
    this.waiters = [];
    for (const w of this.checkWaiters) w.reject(new Error('agent stopped'));
    this.checkWaiters = [];
    this.rejectReady(new Error('agent stopped before it was ready'));
    this.log.info('agent stopped');
  }

  /** Resolves once every datastore change up to `revision` is in the dataplane. */
  waitForRevision(revision: string | bigint, timeoutMs = 30000): Promise<void> {
    const rev = BigInt(revision);
    if (this.appliedRevision >= rev) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: RevisionWaiter = { revision: rev, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`revision ${rev} not applied within ${timeoutMs} ms (applied: ${this.appliedRevision}, seen: ${this.seenRevision}${this.lastError ? `, last error: ${this.lastError}` : ''})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Runs a drift check now (in turn with applies) and returns what it found and repaired. */
  checkNow(): Promise<DriftReport> {
    return new Promise((resolve, reject) => {
      if (this.stopped) return reject(new Error('agent stopped'));
      if (!this.inSync) return reject(new Error('the agent has not programmed the dataplane yet'));
      this.checkWaiters.push({ resolve, reject });
      this.checkRequested = true;
      this.kick();
    });
  }

  get status(): AgentStatus {
    return {
      inSync: this.inSync,
      seenRevision: String(this.seenRevision),
      appliedRevision: String(this.appliedRevision),
      localEndpoints: this.lastDesired?.localEndpoints.size ?? 0,
      applies: this.applies,
      lastApplyMs: this.lastApplyMs,
      lastApplyPhases: this.lastApplyPhases,
      driftRepairs: this.driftRepairs,
      resyncs: this.syncer.resyncs,
      lastError: this.lastError,
    };
  }

  // ------------------------------------------------------------------------------------------

  private onUpdates(updates: KvUpdate[]): void {
    for (const u of updates) {
      this.calc.onUpdate(u.key, u.value);
      if (u.revision > this.seenRevision) this.seenRevision = u.revision;
    }
    if (this.inSync) this.kick();
  }

  private onInSync(revision: bigint): void {
    if (revision > this.seenRevision) this.seenRevision = revision;
    this.inSync = true;
    this.kick();
  }

  private kick(): void {
    if (this.stopped || !this.inSync) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = true;
    this.loopDone = this.loop().finally(() => { this.running = false; });
  }

  private async loop(): Promise<void> {
    do {
      this.pending = false;
      if (this.retryTimer) continue;
      await this.applyOnce();
      if (this.checkRequested && !this.retryTimer) await this.runCheck();
    } while (this.pending && !this.stopped);
  }

  private async applyOnce(): Promise<void> {
    const revision = this.seenRevision;
    const t0 = process.hrtime.bigint();
    try {
      const desired = this.calc.recompute();
      const calcMs = Number(process.hrtime.bigint() - t0) / 1e6;
      this.lastDesired = desired;
      const refreshLinks = this.linksDirty;
      this.linksDirty = false;
      const r = await this.dataplane.apply(desired, { refreshLinks });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      this.lastApplyMs = ms;
      this.lastApplyPhases = { calc: calcMs, ...r.phases };
      this.applies++;
      this.failures = 0;
      this.lastError = undefined;
      this.metrics.applySeconds.observe({ mode: r.nft.mode }, ms / 1000);
      this.metrics.localEndpoints.set(desired.localEndpoints.size);
      if (r.nft.mode !== 'noop' || r.routes.added || r.routes.removed) {
        this.log.debug('applied', { ms: Math.round(ms * 10) / 10, revision: String(revision), nft: r.nft, routes: r.routes, interfaces: r.interfacesConfigured });
      }
      this.appliedRevision = revision;
      this.releaseWaiters();
      if (this.applies === 1) {
        this.log.info('dataplane programmed from the datastore snapshot', { ms: Math.round(ms), endpoints: desired.localEndpoints.size, revision: String(revision) });
        this.resolveReady();
      }
    } catch (err) {
      this.failures++;
      this.lastError = errorMessage(err);
      this.metrics.applyErrors.inc();
      this.dataplane.invalidate();
      const delay = Math.min(30000, 250 * 2 ** Math.min(this.failures - 1, 7));
      this.log.error('applying to the dataplane failed; will rebuild and retry', { error: this.lastError.slice(0, 2000), retryInMs: delay });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.linksDirty = true;
        this.kick();
      }, delay);
    }
  }

  private async runCheck(): Promise<void> {
    this.checkRequested = false;
    const waiters = this.checkWaiters;
    this.checkWaiters = [];
    const desired = this.lastDesired;
    if (!desired) {
      const e = new Error('nothing applied yet');
      for (const w of waiters) w.reject(e);
      return;
    }
    try {
      const report = await this.dataplane.checkAndRepair(desired);
      const found = report.nftables.length + report.routes + report.sysctls;
      if (report.nftables.length) this.metrics.driftRepairs.inc({ kind: 'nftables' }, 1);
      if (report.routes) this.metrics.driftRepairs.inc({ kind: 'routes' }, report.routes);
      if (report.sysctls) this.metrics.driftRepairs.inc({ kind: 'sysctls' }, report.sysctls);
      if (found) {
        this.driftRepairs += found;
        this.log.warn('dataplane drift repaired', { nftables: report.nftables.slice(0, 20), routes: report.routes, sysctls: report.sysctls });
      }
      for (const w of waiters) w.resolve(report);
    } catch (err) {
      this.log.warn('drift check failed', { error: errorMessage(err) });
      this.dataplane.invalidate();
      this.pending = true;
      for (const w of waiters) w.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private releaseWaiters(): void {
    const keep: RevisionWaiter[] = [];
    for (const w of this.waiters) {
      if (w.revision <= this.appliedRevision) {
        if (w.timer) clearTimeout(w.timer);
        w.resolve();
      } else keep.push(w);
    }
    this.waiters = keep;
  }
}
