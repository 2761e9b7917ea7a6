/**
 * The Calico interceptor of the Docker API proxy:
 *   create  - a container with CALICO_IP gets NetworkMode "none"; bad values are refused (400)
 *   start   - before: addresses reserved, profiles created; after the daemon started it and before
 *             the client hears so: the veth wired and the endpoint written, so the container
 *             answers pings the moment `docker run -d` returns; on failure the container is
 *             stopped, everything undone, and the client gets the error
 *   inspect - NetworkSettings show the Calico address and MAC
 *   delete  - addresses released, endpoint removed
 */
import type {
  DockerInterceptor, CreateContext, CreateResult, ContainerActionContext, ActionAnswer, InspectContext, DeleteContext, JsonValue,
} from '../hooks.js';
import { InterceptRefusal } from '../hooks.js';
import { CalicoError, DatastoreUnreachableError, ValidationError } from '../../src/errors.js';
import { CalicoRequest, parseCalicoRequest } from './calico-env.js';
import { Reservation, WorkloadManager } from './manager.js';
import { getAssignmentAttributes, poolForIp } from '../../src/ipam/index.js';
import { AddressNotAssignedError } from '../../src/ipam/errors.js';

interface Pending {
  res: Reservation;
}

const NETWORK_MODES_WE_REPLACE = new Set(['', 'default', 'bridge', 'none']);

/** Datastore and validation errors become answers the docker CLI prints. */
function refusal(err: unknown, what: string): InterceptRefusal {
  if (err instanceof InterceptRefusal) return err;
  if (err instanceof DatastoreUnreachableError) {
    return new InterceptRefusal(503, `Calico: ${err.message}; ${what}`);
  }
  if (err instanceof ValidationError) return new InterceptRefusal(400, `Calico: ${err.message}`);
  if (err instanceof CalicoError) return new InterceptRefusal(500, `Calico: ${err.message}${err.hint ? ` (${err.hint})` : ''}`);
  return new InterceptRefusal(500, `Calico: ${err instanceof Error ? err.message : String(err)}`);
}

function envOf(v: JsonValue | undefined): string[] {
  return Array.isArray(v) ? v.filter((e): e is string => typeof e === 'string') : [];
}

export class CalicoInterceptor implements DockerInterceptor {
  readonly name = 'calico';
  private readonly pending = new WeakMap<ContainerActionContext, Pending>();
  /** Creates that asked for Calico (their answers tell the manager about new containers). */
  private readonly calicoCreates = new WeakSet<CreateContext>();

  constructor(private readonly mgr: WorkloadManager) {}

  async onCreate(ctx: CreateContext): Promise<void> {
    let req: CalicoRequest | undefined;
    try {
      req = parseCalicoRequest(envOf(ctx.body.get(['Env'])));
    } catch (err) {
      throw refusal(err, 'the container was not created');
    }
    if (!req) return;
    this.calicoCreates.add(ctx);
    const mode = ctx.body.get(['HostConfig', 'NetworkMode']);
    if (typeof mode === 'string' && !NETWORK_MODES_WE_REPLACE.has(mode)) {
      throw new InterceptRefusal(400, `Calico: CALICO_IP needs the container's own network namespace; it cannot be combined with --net=${mode}`);
    }
    ctx.body.set(['HostConfig', 'NetworkMode'], 'none');
    // Current CLIs also name the default network here; with "none" the daemon would refuse it.
    if (ctx.body.get(['NetworkingConfig']) !== undefined) ctx.body.set(['NetworkingConfig', 'EndpointsConfig'], {});
    try {
      if (req.ip !== 'auto') {
        const ip = req.ip.address;
        if (req.ip.version === 6 && !(await this.mgr.nodeHasIpv6())) {
          throw new InterceptRefusal(400, `Calico: CALICO_IP=${ip}: this node is not configured for IPv6 (start it with calicoctl node --ip6=<IPv6 address>)`);
        }
        const pool = await poolForIp(this.mgr.kv, ip);
        if (!pool) throw new InterceptRefusal(400, `Calico: CALICO_IP=${ip} is not in any configured Calico pool (see calicoctl pool show; add one with calicoctl pool add <CIDR>)`);
        if (pool.disabled) throw new InterceptRefusal(400, `Calico: CALICO_IP=${ip} is in the disabled pool ${pool.cidr}`);
        try {
          const a = await getAssignmentAttributes(this.mgr.kv, ip);
          const who = (a.attributes as Record<string, string> | null)?.container;
          throw new InterceptRefusal(409, `Calico: CALICO_IP=${ip} is already assigned${who ? ` (to container ${who})` : ''}`);
        } catch (err) {
          if (!(err instanceof AddressNotAssignedError)) throw err;
        }
      } else {
        await this.mgr.nodeHasIpv6(); // reach the datastore now: fail the create, not the start
      }
    } catch (err) {
      throw refusal(err, 'the container was not created');
    }
  }

  afterCreate(ctx: CreateContext, result: CreateResult): void {
    if (this.calicoCreates.delete(ctx) && result.status === 201 && result.containerId) this.mgr.noteCreated(result.containerId);
  }

  async beforeStart(ctx: ContainerActionContext): Promise<void> {
    const c = ctx.container;
    let req: CalicoRequest | undefined;
    try {
      req = parseCalicoRequest(c.Config.Env);
    } catch (err) {
      throw refusal(err, 'the container was not started');
    }
    if (!req) return;
    // The lock is held only while reserving, never across the daemon's answer: a start the daemon
    // refuses must not leave the container locked. The "starting" mark keeps the event watcher from
    // wiring it in between.
    this.mgr.markStarting(ctx.containerId);
    try {
      const t0 = performance.now();
      const res = await this.mgr.withContainerLock(ctx.containerId, () => this.mgr.reserve({ id: c.Id, name: c.Name }, req));
      this.mgr.opts.logger.debug('reserved', { container: c.Id, ms: +(performance.now() - t0).toFixed(1) });
      this.pending.set(ctx, { res });
    } catch (err) {
      this.mgr.unmarkStarting(ctx.containerId);
      throw refusal(err, 'the container was not started');
    }
  }

  async afterStart(ctx: ContainerActionContext, _answer: ActionAnswer): Promise<void> {
    const p = this.pending.get(ctx);
    if (!p) return;
    this.pending.delete(ctx);
    try {
      await this.mgr.withContainerLock(ctx.containerId, () => this.mgr.wire(p.res));
    } catch (err) {
      // The container runs without its network: stop it, give the addresses back, and say why.
      await ctx.daemon.request('POST', `/containers/${ctx.containerId}/kill`).catch(() => undefined);
      await this.mgr.release(p.res).catch(() => undefined);
      throw refusal(err, 'the container was stopped');
    } finally {
      this.mgr.unmarkStarting(ctx.containerId);
    }
  }

  /** The daemon refused the start: nothing was wired, so give back what was reserved. */
  async onStartFailed(ctx: ContainerActionContext): Promise<void> {
    const p = this.pending.get(ctx);
    this.pending.delete(ctx);
    try {
      if (p) await this.mgr.withContainerLock(ctx.containerId, () => this.mgr.release(p.res));
    } finally {
      this.mgr.unmarkStarting(ctx.containerId);
    }
  }

  async onInspect(ctx: InspectContext): Promise<void> {
    let eps;
    try {
      eps = await this.mgr.endpoints(ctx.containerId);
    } catch {
      return; // inspect must keep working when etcd is down
    }
    const ep = eps[0]?.ep;
    if (!ep) return;
    const v4 = ep.ipv4_nets[0]?.split('/')[0];
    const v6 = ep.ipv6_nets[0]?.split('/')[0];
    const ns = ['NetworkSettings'];
    if (v4) {
      ctx.body.set([...ns, 'IPAddress'], v4);
      ctx.body.set([...ns, 'IPPrefixLen'], 32);
      ctx.body.set([...ns, 'Gateway'], ep.ipv4_gateway ?? '');
    }
    if (v6) {
      ctx.body.set([...ns, 'GlobalIPv6Address'], v6);
      ctx.body.set([...ns, 'GlobalIPv6PrefixLen'], 128);
      ctx.body.set([...ns, 'IPv6Gateway'], ep.ipv6_gateway ?? '');
    }
    if (ep.mac) ctx.body.set([...ns, 'MacAddress'], ep.mac);
  }

  async afterDelete(ctx: DeleteContext): Promise<void> {
    await this.mgr.withContainerLock(ctx.containerId, () => this.mgr.teardown(ctx.containerId));
  }
}
