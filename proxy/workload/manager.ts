/**
 * Workload wiring, the one implementation behind the proxy's interceptors, the daemon event
 * watcher, the start-up reconciler and `calicoctl container ...`:
 *
 *   reserve  - addresses from IPAM (explicit or auto, handle = this node + container id), the
 *              container's profiles created if missing; or the existing endpoint on a restart
 *   wire     - the veth into the running container (src/dataplane/wire.ts), then the endpoint
 *              record; waits until the local agent has programmed it, when one is attached
 *   teardown - veth, addresses, record
 *
 * Every step undoes what it did when a later one fails, so nothing is left half-made. Work on one
 * container is serialised, so a start seen both through the proxy and on the daemon's event
 * stream is wired once.
 */
import { existsSync } from 'node:fs';
import { KV } from '../../src/datastore/kv.js';
import { keys } from '../../src/datastore/keys.js';
import { Logger } from '../../src/log.js';
import { CalicoError } from '../../src/errors.js';
import { StoredWorkloadEndpoint, defaultProfile, interfaceNameFor } from '../../src/model/stored.js';
import { createProfile } from '../../src/datastore/profiles.js';
import { autoAssign, assignIp, releaseIps, releaseByHandle } from '../../src/ipam/index.js';
import {
  wireWorkload, unwireWorkload, getLink, netnsOfPid, Netns, LinkExistsError, WiredWorkload, NetnsNotFoundError, WireHelper, ensureWireHelper,
} from '../../src/dataplane/index.js';
import { errorMessage } from '../../src/errors.js';
import type { DaemonClient, ContainerInspect } from '../daemon-client.js';
import { CalicoRequest, parseCalicoRequest } from './calico-env.js';
import { DockerEndpoint, ORCHESTRATOR, endpointsOfContainer, allDockerEndpoints, newEndpointId } from './endpoints.js';

export interface WorkloadManagerOptions {
  kv: KV;
  nodeName: string;
  daemon: DaemonClient;
  logger: Logger;
  /** Namespace of the host side (default: this process's). */
  hostNetns?: Netns;
  /** Awaited with the etcd revision of every endpoint record written (the node waits for its agent). */
  onEndpointWritten?: (revision: string) => Promise<void>;
  containerIfName?: string;
}

export interface Reservation {
  containerId: string;
  containerName: string;
  endpointId: string;
  ipv4: string[];
  ipv6: string[];
  profiles: string[];
  mac?: string;
  /** The record being re-wired (restart, start of a stopped container), if any. */
  existing?: DockerEndpoint;
  /** Addresses allocated by this reservation, released again if wiring fails. */
  allocated: string[];
  /** Milliseconds spent per phase before the wiring (logged with it). */
  timings?: Record<string, number>;
}

export class WorkloadError extends CalicoError {}

/** Internal: the container already has an endpoint (a restart); its reservation is that endpoint. */
class AlreadyHasEndpoint extends Error {
  constructor(readonly endpoint: DockerEndpoint) { super('the container already has an endpoint'); }
}

const hostPart = (cidr: string) => cidr.split('/')[0]!;

/** Times consecutive phases (for the log: where a start's time goes). */
class PhaseTimer {
  readonly laps: Record<string, number> = {};
  private t = performance.now();
  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = +(now - this.t).toFixed(1);
    this.t = now;
  }
}

/** How long a start announced by the proxy keeps other wiring paths off that container. */
const STARTING_TTL_MS = 60000;
/** How many created-but-never-started containers are remembered (beyond that, they are simply looked up). */
const MAX_FRESH = 10000;

export class WorkloadManager {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Containers the proxy is starting (reserved, not yet wired): the event watcher leaves them alone. */
  private readonly starting = new Map<string, number>();
  private readonly log: Logger;

  /**
   * Containers created through the proxy with CALICO_IP and not reserved for yet. Such a container
   * cannot have an endpoint or addresses yet, so its first reservation skips looking for them.
   * Any reservation takes the mark (whichever path wires it first); bounded, oldest dropped.
   */
  private readonly fresh = new Set<string>();
  /** The native wiring helper; null once it proved unusable (then `ip` is used). */
  private helper?: WireHelper | null;

  constructor(readonly opts: WorkloadManagerOptions) {
    this.log = opts.logger.child({ component: 'workloads' });
  }

  private wireHelper(): WireHelper | undefined {
    // The native helper when it builds and passes its self-check; otherwise `ip`, for good.
    if (this.helper === undefined) {
      try {
        this.helper = new WireHelper(ensureWireHelper(), this.opts.hostNetns);
      } catch (err) {
        this.helper = null;
        this.log.warn('native wiring helper unavailable; wiring with ip (slower)', { err: errorMessage(err) });
      }
    }
    return this.helper ?? undefined;
  }

  /** A container with CALICO_IP was just created through the proxy (see `fresh`). */
  noteCreated(containerId: string): void {
    if (this.fresh.size >= MAX_FRESH) this.fresh.delete(this.fresh.values().next().value as string);
    this.fresh.add(containerId);
  }

  /** Builds and checks the wiring helper now (a daemon calls this at start-up), not on the first container. */
  prepareWiring(): void {
    this.wireHelper();
  }

  /** Stops the wiring helper process, if one runs. */
  async close(): Promise<void> {
    await this.helper?.close();
  }

  get kv(): KV { return this.opts.kv; }
  get nodeName(): string { return this.opts.nodeName; }
  get daemon(): DaemonClient { return this.opts.daemon; }

  /** The IPAM handle of a container's addresses; the node in it lets the reconciler find its own. */
  handleOf(containerId: string): string {
    return `${this.opts.nodeName}.${ORCHESTRATOR}.${containerId}`;
  }

  markStarting(containerId: string): void {
    this.starting.set(containerId, Date.now());
  }

  unmarkStarting(containerId: string): void {
    this.starting.delete(containerId);
  }

  /** True while the proxy is between reserving and wiring this container (bounded, so a lost start cannot block it forever). */
  isStarting(containerId: string): boolean {
    const t = this.starting.get(containerId);
    if (t === undefined) return false;
    if (Date.now() - t > STARTING_TTL_MS) {
      this.starting.delete(containerId);
      return false;
    }
    return true;
  }

  /** Runs `fn` with no other work on the same container in flight. */
  withContainerLock<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(containerId) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(containerId, tail);
    void tail.then(() => { if (this.locks.get(containerId) === tail) this.locks.delete(containerId); });
    return run;
  }

  /** Whether this node can give IPv6 addresses (it needs an IPv6 address of its own). */
  async nodeHasIpv6(): Promise<boolean> {
    const [a, b] = await Promise.all([this.kv.get(keys.bird6Ip(this.nodeName)), this.kv.get(keys.bgpHostIpV6(this.nodeName))]);
    return Boolean(a?.value || b?.value);
  }

  endpoints(containerId: string): Promise<DockerEndpoint[]> {
    return endpointsOfContainer(this.kv, this.nodeName, containerId);
  }

  /**
   * Addresses and profiles for a container about to start (or its existing endpoint). The checks
   * (an existing endpoint, addresses left under the container's handle) run at the same time as
   * IPAM's reads, and the profiles are created at the same time as IPAM's write: a fresh start
   * costs one round of reads and one write, not six round trips in a row.
   */
  async reserve(container: { id: string; name: string }, req: CalicoRequest): Promise<Reservation> {
    const tm = new PhaseTimer();
    const handleId = this.handleOf(container.id);
    const fresh = this.fresh.delete(container.id);
    const lookups = fresh ? Promise.resolve([[], undefined] as const) : Promise.all([this.endpoints(container.id), this.kv.get(keys.ipamHandle(handleId))]);
    const checked = lookups.then(async ([eps, leftover]) => {
      if (eps[0]) throw new AlreadyHasEndpoint(eps[0]);
      tm.lap('lookup');
      // Addresses under this container's handle with no endpoint record are left from a start that
      // failed before wiring (or a crash): start afresh rather than hold two.
      if (leftover) await releaseByHandle(this.kv, handleId);
    });
    const profilesMade = checked.then(() => Promise.all(req.profiles.map(async (p) => {
      if (await createProfile(this.kv, defaultProfile(p))) this.log.info('created profile', { profile: p, container: container.id });
    })));
    const attrs = { container: container.name.replace(/^\//, ''), node: this.nodeName };
    const assigned = req.ip === 'auto'
      ? autoAssign(this.kv, { node: this.nodeName, num4: 1, num6: 0, handleId, attrs, after: checked })
      : assignIp(this.kv, { ip: req.ip.address, node: this.nodeName, handleId, attrs, after: checked })
        .then((ip) => (req.ip !== 'auto' && req.ip.version === 6 ? { ipv4: [], ipv6: [ip] } : { ipv4: [ip], ipv6: [] }));
    const [a, p] = await Promise.allSettled([assigned, profilesMade]);
    if (a.status === 'rejected') {
      const existing = a.reason instanceof AlreadyHasEndpoint ? a.reason.endpoint : undefined;
      if (!existing) throw a.reason;
      return {
        containerId: container.id, containerName: container.name, endpointId: existing.endpointId,
        ipv4: existing.ep.ipv4_nets.map(hostPart), ipv6: existing.ep.ipv6_nets.map(hostPart),
        profiles: existing.ep.profile_ids, mac: existing.ep.mac ?? undefined, existing, allocated: [],
      };
    }
    const { ipv4, ipv6 } = a.value;
    if (p.status === 'rejected') {
      await releaseIps(this.kv, [...ipv4, ...ipv6]).catch((e: unknown) => this.log.error('release after a failed profile creation failed', { container: container.id, err: e as Error }));
      throw p.reason;
    }
    tm.lap('ipamAndProfiles');
    return { containerId: container.id, containerName: container.name, endpointId: newEndpointId(), ipv4, ipv6, profiles: req.profiles, allocated: [...ipv4, ...ipv6], timings: tm.laps };
  }

  /** Gives back what `reserve` allocated (wiring failed, or the start never happened). */
  async release(res: Reservation): Promise<void> {
    if (res.allocated.length === 0) return;
    await releaseIps(this.kv, res.allocated);
    res.allocated = [];
  }

  /**
   * Wires the reserved addresses into the running container and writes its endpoint record. On
   * any failure everything this call made is removed again; the reservation is left to the caller.
   */
  async wire(res: Reservation, inspect?: ContainerInspect): Promise<StoredWorkloadEndpoint> {
    const tInspect = performance.now();
    const c = inspect ?? (await this.daemon.inspectContainer(res.containerId));
    if (!c) throw new WorkloadError(`container ${res.containerName} no longer exists`);
    if (!c.State.Running || !c.State.Pid) throw this.exitedError(c);
    const t0 = performance.now();
    const key = keys.workloadEndpoint(this.nodeName, ORCHESTRATOR, res.containerId, res.endpointId);
    let ep: StoredWorkloadEndpoint | undefined;
    let recordWritten = false;
    let t2 = 0;
    let t3 = 0;
    // The record (and the agent's ACLs for it) are done while the container side is configured.
    const writeRecord = async (w: WiredWorkload): Promise<void> => {
      const record: StoredWorkloadEndpoint = {
        ...(res.existing?.ep ?? {}),
        state: 'active',
        name: w.hostIfName,
        mac: w.mac,
        profile_ids: res.existing ? res.existing.ep.profile_ids : res.profiles,
        ipv4_nets: w.ipv4Addrs.map((a) => `${a}/32`),
        ipv6_nets: w.ipv6Addrs.map((a) => `${a}/128`),
        ipv4_gateway: w.ipv4Gateway,
        ipv6_gateway: w.ipv6Gateway,
        labels: res.existing?.ep.labels ?? {},
        'container:if_name': w.containerIfName,
      };
      const revision = await this.kv.put(key, JSON.stringify(record));
      recordWritten = true;
      ep = record;
      t2 = performance.now();
      if (this.opts.onEndpointWritten) await this.opts.onEndpointWritten(revision);
      t3 = performance.now();
    };
    const wireOpts = {
      netnsPath: `/proc/${c.State.Pid}/ns/net`,
      endpointId: res.endpointId,
      containerIfName: this.opts.containerIfName ?? 'eth1',
      ipv4Addrs: res.ipv4,
      ipv6Addrs: res.ipv6,
      mac: res.mac,
      hostNetns: this.opts.hostNetns,
      alongsideContainerSide: writeRecord,
      helper: this.wireHelper(),
    };
    let wired;
    try {
      try {
        wired = await wireWorkload(wireOpts);
      } catch (err) {
        // A left-over host side (the container was restarted a moment ago and the old veth has
        // not gone yet) is removed, then the wiring is tried once more.
        if (!(err instanceof LinkExistsError)) throw err;
        await unwireWorkload(res.endpointId, { hostNetns: this.opts.hostNetns, flushConntrack: false }).catch(() => false);
        wired = await wireWorkload(wireOpts);
      }
    } catch (err) {
      // Nothing may be left half-made: the record goes with the veth (wireWorkload removed that).
      if (recordWritten) await this.kv.delete(key).catch(() => undefined);
      // The usual reason a wiring fails half-way: the container exited (its namespace went). The
      // daemon may not have noticed yet (inspect still says running), the kernel already has.
      const now = await this.daemon.inspectContainer(res.containerId).catch(() => undefined);
      const nsGone = err instanceof NetnsNotFoundError || !existsSync(`/proc/${c.State.Pid}`);
      if (nsGone || !now?.State.Running || now.State.Pid !== c.State.Pid) throw this.exitedError(now ?? c, err);
      throw err;
    }
    res.mac = wired.mac;
    const written = ep!; // set by writeRecord, which wireWorkload ran before succeeding
    this.log.info('wired container', {
      container: res.containerId, endpoint: res.endpointId, ipv4: wired.ipv4Addrs, ipv6: wired.ipv6Addrs, profiles: written.profile_ids,
      // wireAndRecord: veth and record (the container side overlaps the agent's wait); agent: the wait for the agent's ACLs.
      ms: { ...res.timings, inspect: +(t0 - tInspect).toFixed(1), wireAndRecord: +(t2 - t0).toFixed(1), agent: +(t3 - t2).toFixed(1), total: +(performance.now() - t0).toFixed(1) },
    });
    return written;
  }

  private exitedError(c: ContainerInspect, cause?: unknown): WorkloadError {
    const code = (c.State as { ExitCode?: number }).ExitCode;
    return new WorkloadError(`container ${c.Name.replace(/^\//, '')} exited before Calico could network it${c.State.Running ? '' : code !== undefined ? ` (exit code ${code})` : ''}`, {
      hint: 'a container with CALICO_IP must keep running while it is started; check its command',
      cause,
    });
  }

  /** Reserve + wire for a container that is running, releasing what was reserved if wiring fails. */
  async reserveAndWire(c: ContainerInspect, req: CalicoRequest): Promise<StoredWorkloadEndpoint> {
    const res = await this.reserve({ id: c.Id, name: c.Name }, req);
    try {
      return await this.wire(res, c);
    } catch (err) {
      await this.release(res).catch((e: unknown) => this.log.error('release after failed wiring failed', { container: c.Id, err: e as Error }));
      throw err;
    }
  }

  /**
   * Removes everything Calico holds for a container: the veth (if the container still runs), its
   * addresses (by handle, and by the record's addresses for records written by other tools) and
   * its endpoint records. Returns whether there was anything.
   */
  async teardown(containerId: string): Promise<boolean> {
    this.fresh.delete(containerId);
    const eps = await this.endpoints(containerId);
    for (const e of eps) await unwireWorkload(e.endpointId, { hostNetns: this.opts.hostNetns }).catch(() => false);
    const released = await releaseByHandle(this.kv, this.handleOf(containerId));
    const recorded = eps.flatMap((e) => [...e.ep.ipv4_nets, ...e.ep.ipv6_nets].map(hostPart)).filter((ip) => !released.includes(ip));
    if (recorded.length) await releaseIps(this.kv, recorded);
    if (eps.length) await this.kv.deletePrefix(keys.workloadEndpointsOf(this.nodeName, ORCHESTRATOR, containerId));
    if (eps.length || released.length) this.log.info('removed container from Calico', { container: containerId, addresses: [...released, ...recorded] });
    return eps.length > 0 || released.length > 0;
  }

  /**
   * Makes sure a running container that asks for Calico is wired: used for starts that did not go
   * through the proxy (restart policies, daemon restarts, the direct socket) and at start-up.
   */
  async ensureWired(containerId: string): Promise<'wired' | 'already' | 'not-calico' | 'gone'> {
    return this.withContainerLock(containerId, async () => {
      // The proxy is starting it and will wire it as soon as the daemon answers.
      if (this.isStarting(containerId)) return 'already';
      const c = await this.daemon.inspectContainer(containerId);
      if (!c) return 'gone';
      let req: CalicoRequest | undefined;
      try {
        req = parseCalicoRequest(c.Config.Env);
      } catch {
        return 'not-calico';
      }
      if (!req) return 'not-calico';
      if (!c.State.Running) return 'gone';
      const [ep] = await this.endpoints(c.Id);
      if (ep && (await this.isWiredInto(ep, c.State.Pid))) return 'already';
      await this.reserveAndWire(c, req);
      return 'wired';
    });
  }

  /** The host side exists and its peer lives in this container's namespace. */
  private async isWiredInto(ep: DockerEndpoint, pid: number): Promise<boolean> {
    const link = await getLink(interfaceNameFor(ep.endpointId), { netns: this.opts.hostNetns }).catch(() => undefined);
    if (!link) return false;
    const peer = await getLink(ep.ep['container:if_name'] ?? 'eth1', { netns: netnsOfPid(pid) }).catch(() => undefined);
    return peer !== undefined;
  }

  /**
   * Start-up reconciliation against the daemon: records and addresses of containers that no
   * longer exist are removed; running Calico containers that lost their wiring are re-wired.
   */
  async reconcile(): Promise<{ removed: string[]; rewired: string[] }> {
    const res = await this.daemon.request('GET', '/containers/json?all=1');
    if (res.status !== 200) throw new WorkloadError(`cannot list containers: daemon answered ${res.status}`);
    const containers = JSON.parse(res.body.toString('utf8')) as Array<{ Id: string; State: string }>;
    const exists = new Set(containers.map((c) => c.Id));
    const removed: string[] = [];
    const rewired: string[] = [];
    const recorded = new Set((await allDockerEndpoints(this.kv, this.nodeName)).map((e) => e.containerId));
    // Handles of this node's containers (addresses reserved but never recorded, e.g. a crash mid-start).
    const handlePrefix = `${this.nodeName}.${ORCHESTRATOR}.`;
    const handles = (await this.kv.list(keys.ipamHandlePrefix, { keysOnly: true })).entries
      .map((e) => decodeURIComponent(e.key.slice(keys.ipamHandlePrefix.length)))
      .filter((h) => h.startsWith(handlePrefix))
      .map((h) => h.slice(handlePrefix.length));
    for (const cid of new Set([...recorded, ...handles])) {
      if (exists.has(cid)) continue;
      await this.withContainerLock(cid, () => this.teardown(cid));
      removed.push(cid);
    }
    for (const c of containers) {
      if (c.State !== 'running') continue;
      try {
        if ((await this.ensureWired(c.Id)) === 'wired') rewired.push(c.Id);
      } catch (err) {
        this.log.error('could not re-wire container', { container: c.Id, err: err as Error });
      }
    }
    return { removed, rewired };
  }
}
