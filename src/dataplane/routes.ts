/**
 * Host routes to workloads: `<ip>/32 dev caliX proto <ours> scope link` (and /128). Routes are
 * tagged with a routing protocol number of our own so that listing by protocol finds exactly the
 * routes we own and never touches anybody else's (BIRD uses `proto bird`, the kernel `proto
 * kernel`, DHCP clients `proto dhcp`...).
 */
import { InNetns } from './netns.js';
import { ipBatch, ipJson, isNotFoundMessage } from './ip.js';
import { validateIfName } from './links.js';
import { BatchFailure } from './errors.js';
import { parseCidr, formatCidr } from '../net/ip.js';

/** Routing protocol number of routes we program. Free in /etc/iproute2/rt_protos. */
export const CALICO_ROUTE_PROTOCOL = 80;

export interface HostRoute {
  /** Normalised CIDR, e.g. 10.65.0.1/32 or fd00::1/128. */
  dst: string;
  dev: string;
}

export interface ListedRoute extends HostRoute {
  protocol: string;
  scope?: string;
  family: 4 | 6;
}

interface IpRouteJson {
  dst: string;
  dev?: string;
  protocol?: string;
  scope?: string;
}

const PROTO_NAMES: Record<string, number> = { redirect: 1, kernel: 2, boot: 3, static: 4, ra: 9, zebra: 11, bird: 12, dhcp: 16, babel: 42, bgp: 186 };

export function protocolNumber(p: string | undefined): number | undefined {
  if (p === undefined) return undefined;
  if (/^\d+$/.test(p)) return Number(p);
  return PROTO_NAMES[p];
}

function routeDst(dst: string, family: 4 | 6): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return formatCidr(parseCidr(dst));
}

export function routeKey(r: HostRoute): string {
  return `${r.dst} ${r.dev}`;
}

/** The `ip route replace` command for a host route (exported for batching). */
export function routeReplaceCommand(r: HostRoute, protocol = CALICO_ROUTE_PROTOCOL): string {
  validateIfName(r.dev);
  // No -4/-6: batch lines cannot carry options, and ip infers the family from the prefix.
  return `route replace ${formatCidr(parseCidr(r.dst))} dev ${r.dev} proto ${protocol} scope link`;
}

export function routeDeleteCommand(r: HostRoute, protocol = CALICO_ROUTE_PROTOCOL): string {
  validateIfName(r.dev);
  return `route del ${formatCidr(parseCidr(r.dst))} dev ${r.dev} proto ${protocol}`;
}

export interface RouteChanges {
  replace?: HostRoute[];
  delete?: HostRoute[];
}

export interface RouteChangeResult {
  /** Failures other than "already gone" on delete. */
  failures: BatchFailure[];
}

/**
 * Applies route replacements and deletions in one `ip -force -batch`. Deleting a route that is
 * already gone (its interface was removed, say) is not a failure.
 */
export async function applyRouteChanges(changes: RouteChanges, opts: InNetns & { protocol?: number } = {}): Promise<RouteChangeResult> {
  const proto = opts.protocol ?? CALICO_ROUTE_PROTOCOL;
  const dels = (changes.delete ?? []).map((r) => routeDeleteCommand(r, proto));
  const reps = (changes.replace ?? []).map((r) => routeReplaceCommand(r, proto));
  const cmds = [...dels, ...reps];
  const { failures } = await ipBatch(cmds, { netns: opts.netns, force: true });
  return { failures: failures.filter((f) => !(f.line <= dels.length && isNotFoundMessage(f.message))) };
}

export const replaceRoutes = (routes: HostRoute[], opts: InNetns & { protocol?: number } = {}) => applyRouteChanges({ replace: routes }, opts);
export const deleteRoutes = (routes: HostRoute[], opts: InNetns & { protocol?: number } = {}) => applyRouteChanges({ delete: routes }, opts);

/** Lists routes of both families (or one), optionally only one protocol's and one device's. */
export async function listRoutes(opts: InNetns & { protocol?: number; dev?: string; family?: 4 | 6 } = {}): Promise<ListedRoute[]> {
  const fams: Array<4 | 6> = opts.family ? [opts.family] : [4, 6];
  const out: ListedRoute[] = [];
  for (const fam of fams) {
    const args = [`-${fam}`, 'route', 'show'];
    if (opts.protocol !== undefined) args.push('proto', String(opts.protocol));
    if (opts.dev) args.push('dev', validateIfName(opts.dev));
    let rows: IpRouteJson[];
    try {
      rows = await ipJson<IpRouteJson>(args, { netns: opts.netns });
    } catch (err) {
      // Listing routes of a device that just went away is an empty list, not an error.
      if (opts.dev && err instanceof Error && isNotFoundMessage(err.message)) continue;
      throw err;
    }
    for (const r of rows) {
      out.push({
        dst: routeDst(r.dst, fam),
        dev: r.dev ?? opts.dev ?? '',
        protocol: r.protocol ?? String(opts.protocol ?? ''),
        scope: r.scope,
        family: fam,
      });
    }
  }
  return out;
}
