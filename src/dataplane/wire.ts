/**
 * Wiring a workload (container) into the host the Calico way, used by the Docker proxy and by
 * `calicoctl container add`:
 *
 *   host netns                                 container netns
 *   caliXXXXXXXXXXX  (MAC ee:ee:ee:ee:ee:ee) <-> eth1  (the workload's MAC)
 *     proxy_arp=1, proxy_delay=0, forwarding       10.65.0.1/32, fd00::1/128
 *     route 10.65.0.1/32 dev cali... proto 80      169.254.1.1 dev eth1 scope link
 *     route fd00::1/128 dev cali... proto 80       default via 169.254.1.1 dev eth1
 *     fe80::ecee:eeff:feee:eeee/64                 default via fe80::ecee:eeff:feee:eeee dev eth1
 *
 * The container's gateway 169.254.1.1 exists nowhere: the host answers ARP for it through proxy
 * ARP on the cali interface, so no pool address is spent on gateways. For IPv6 the gateway is the
 * host side's link-local address, which is fixed because the host side's MAC is fixed (Calico's
 * ee:ee:ee:ee:ee:ee), and is added without duplicate address detection so the route is usable at
 * once rather than after ~1 s of DAD.
 *
 * Two implementations of the same steps. With a `helper` (native/calico-wire.c, see
 * wire-helper.ts) both ends are configured through netlink by one long-lived process: no spawn,
 * ~1 ms. Without it (no C compiler): one `ip -batch` in the host namespace (veth with the peer
 * created directly inside the container namespace, addresses, routes), then in parallel the
 * sysctl writes and one `ip -batch` inside the container namespace: 2-5 process spawns, ~8-12 ms
 * measured. The MAC is chosen here (when not given) so that nothing needs reading back.
 *
 * Everything hangs off the host-side veth: deleting it removes the container end, the routes,
 * the proxy NDP entries and the per-interface sysctls. So undoing any failed step is deleting
 * it, and `unwireWorkload` is the same deletion plus the conntrack cleanup.
 */
import { existsSync } from 'node:fs';
import { Netns, netnsByPath, describeNetns } from './netns.js';
import { ipBatch, isExistsMessage } from './ip.js';
import { vethAddCommand, normaliseMac, randomMac, validateIfName, deleteLink } from './links.js';
import { addressAddCommand } from './addresses.js';
import { routeReplaceCommand, listRoutes, CALICO_ROUTE_PROTOCOL } from './routes.js';
import { writeSysctls, workloadInterfaceSysctls } from './sysctl.js';
import { flushConntrackFor } from './conntrack.js';
import { IpBatchError, LinkExistsError, NetnsNotFoundError, WiringError } from './errors.js';
import { ValidationError } from '../errors.js';
import { parseIp, formatIp } from '../net/ip.js';
import { interfaceNameFor, GATEWAY_V4 } from '../model/stored.js';
import { WireHelper, WireHelperError } from './wire-helper.js';

/** The fixed MAC of the host side of every workload veth. */
export const HOST_SIDE_MAC = 'ee:ee:ee:ee:ee:ee';
/** The IPv6 link-local address that MAC gives (EUI-64): the workloads' IPv6 gateway. */
export const GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';

export interface WireWorkloadOptions {
  /** The container's network namespace: /proc/<pid>/ns/net or /run/netns/<name>. */
  netnsPath: string;
  /** Endpoint id; the host side is `cali` + its first 11 characters. */
  endpointId: string;
  containerIfName?: string;
  ipv4Addrs: string[];
  ipv6Addrs: string[];
  /** Container-side MAC (re-installing a known endpoint); a random local one otherwise. */
  mac?: string;
  /** Namespace of the host side; default: the one this process is in. */
  hostNetns?: Netns;
  routeProtocol?: number;
  /**
   * Work to run once the host side exists, at the same time as the container side is configured
   * (the proxy writes the endpoint record and waits for the agent's ACLs here: the two overlap
   * instead of adding up). If it fails, the wiring is undone and its error thrown; if the wiring
   * fails after it ran, undoing what it did is the caller's job.
   */
  alongsideContainerSide?: (wired: WiredWorkload) => Promise<void>;
  /** The native helper (its host namespace must be `hostNetns`); without it `ip` is spawned. */
  helper?: WireHelper;
}

export interface WiredWorkload {
  hostIfName: string;
  containerIfName: string;
  /** Container-side MAC, as recorded in the endpoint. */
  mac: string;
  ipv4Addrs: string[];
  ipv6Addrs: string[];
  ipv4Gateway: string | null;
  ipv6Gateway: string | null;
}

function hostAddr(text: string, version: 4 | 6, field: string): string {
  const [a, len, extra] = text.trim().split('/');
  let ip;
  try {
    ip = parseIp(a ?? '');
  } catch {
    throw new ValidationError(`${field}: '${text}' is not an IP address`, field);
  }
  const full = version === 4 ? '32' : '128';
  if (ip.version !== version) throw new ValidationError(`${field}: '${text}' is not an IPv${version} address`, field);
  if (extra !== undefined || (len !== undefined && len !== full)) {
    throw new ValidationError(`${field}: '${text}' must be a single address (/${full}): workloads get host routes, not subnets`, field);
  }
  return formatIp(ip);
}

export async function wireWorkload(opts: WireWorkloadOptions): Promise<WiredWorkload> {
  // --- validate everything before touching anything
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.endpointId)) {
    throw new ValidationError(`endpoint id '${opts.endpointId}' must be letters, digits, '_', '.', '-'`, 'endpointId');
  }
  const hostIf = validateIfName(interfaceNameFor(opts.endpointId), 'endpointId');
  const contIf = validateIfName(opts.containerIfName ?? 'eth1', 'containerIfName');
  const v4 = [...new Set(opts.ipv4Addrs.map((a) => hostAddr(a, 4, 'ipv4Addrs')))];
  const v6 = [...new Set(opts.ipv6Addrs.map((a) => hostAddr(a, 6, 'ipv6Addrs')))];
  if (v4.length + v6.length === 0) throw new ValidationError('a workload needs at least one IPv4 or IPv6 address', 'ipv4Addrs');
  const mac = opts.mac ? normaliseMac(opts.mac) : randomMac();
  const container = netnsByPath(opts.netnsPath);
  if (!existsSync(container.path)) throw new NetnsNotFoundError(container.path);
  const hostNs = opts.hostNetns;
  const proto = opts.routeProtocol ?? CALICO_ROUTE_PROTOCOL;
  const wired: WiredWorkload = {
    hostIfName: hostIf,
    containerIfName: contIf,
    mac,
    ipv4Addrs: v4,
    ipv6Addrs: v6,
    ipv4Gateway: v4.length ? GATEWAY_V4 : null,
    ipv6Gateway: v6.length ? GATEWAY_V6 : null,
  };
  if (opts.helper) return wireWithHelper(opts.helper, opts, wired, container, proto);

  // --- step 1: the veth (peer created in the container), host side up, host routes
  const hostCmds = [vethAddCommand({ name: hostIf, peerName: contIf, peerNetns: container, mac: HOST_SIDE_MAC, peerMac: mac })];
  if (v6.length) {
    // No kernel-generated link-local: we add the fixed one without DAD.
    hostCmds.push(`link set dev ${hostIf} addrgenmode none`);
  }
  hostCmds.push(`link set dev ${hostIf} up`);
  if (v6.length) hostCmds.push(addressAddCommand(hostIf, `${GATEWAY_V6}/64`, { noDad: true }));
  for (const a of [...v4, ...v6]) hostCmds.push(routeReplaceCommand({ dst: a, dev: hostIf }, proto));

  try {
    await ipBatch(hostCmds, { netns: hostNs });
  } catch (err) {
    const created = err instanceof IpBatchError && err.linesRun >= 1;
    if (!created) {
      if (err instanceof IpBatchError && isExistsMessage(err.failures[0]?.message ?? '')) {
        throw new LinkExistsError(`${hostIf} (host) or ${contIf} (container)`, `${describeNetns(hostNs)} / ${container.path}`);
      }
      throw new WiringError('create veth', err, true);
    }
    throw await rollback('configure host side', err, hostIf, hostNs);
  }

  // --- step 2 (in parallel): host-side sysctls, and the container side
  const contCmds = [`link set dev ${contIf} up`];
  for (const a of v4) contCmds.push(addressAddCommand(contIf, `${a}/32`));
  if (v4.length) {
    contCmds.push(`route replace ${GATEWAY_V4} dev ${contIf} scope link`);
    contCmds.push(`route replace default via ${GATEWAY_V4} dev ${contIf}`);
  }
  for (const a of v6) contCmds.push(addressAddCommand(contIf, `${a}/128`, { noDad: true }));
  if (v6.length) contCmds.push(`route replace default via ${GATEWAY_V6} dev ${contIf}`);

  // Docker creates containers with IPv6 disabled by default (default.disable_ipv6=1 in their
  // namespace), which the new eth1 inherits: turn it on for this interface before the addresses.
  const containerSide = async () => {
    if (v6.length) await writeSysctls([{ key: `net/ipv6/conf/${contIf}/disable_ipv6`, value: '0' }], { netns: container, strict: true });
    await ipBatch(contCmds, { netns: container });
  };
  const [sys, cont, alongside] = await Promise.allSettled([
    writeSysctls(workloadInterfaceSysctls(hostIf, { ipv6: v6.length > 0 }), { netns: hostNs, strict: true }),
    containerSide(),
    opts.alongsideContainerSide?.(wired),
  ]);
  if (sys.status === 'rejected') throw await rollback('host sysctls', sys.reason, hostIf, hostNs);
  if (cont.status === 'rejected') throw await rollback('configure container side', cont.reason, hostIf, hostNs);
  if (alongside.status === 'rejected') {
    await deleteLink(hostIf, { netns: hostNs }).catch(() => undefined);
    throw alongside.reason;
  }
  return wired;
}

/** The same steps through the native helper: host side (with its sysctls), then the container side alongside the caller's work. */
async function wireWithHelper(helper: WireHelper, opts: WireWorkloadOptions, wired: WiredWorkload, container: Netns, proto: number): Promise<WiredWorkload> {
  const hostIf = wired.hostIfName;
  const contIf = wired.containerIfName;
  const v4 = wired.ipv4Addrs;
  const v6 = wired.ipv6Addrs;
  const hostNs = opts.hostNetns;
  try {
    await helper.host({
      containerNetnsPath: container.path, hostIfName: hostIf, containerIfName: contIf, hostMac: HOST_SIDE_MAC, containerMac: wired.mac,
      addrGenModeNone: v6.length > 0, linkLocal: v6.length ? `${GATEWAY_V6}/64` : undefined, routeProtocol: proto,
      routes: [...v4, ...v6], sysctls: workloadInterfaceSysctls(hostIf, { ipv6: v6.length > 0 }),
    });
  } catch (err) {
    const stage = err instanceof WireHelperError ? err.stage : 'helper';
    if (stage === 'netns') throw new NetnsNotFoundError(container.path);
    if (stage === 'exists') throw new LinkExistsError(`${hostIf} (host) or ${contIf} (container)`, `${describeNetns(hostNs)} / ${container.path}`);
    // Before the veth exists nothing needs undoing; after it, deleting the host side undoes all.
    if (stage === 'veth' || stage === 'input') throw new WiringError('create veth', err, true);
    throw await rollback(stage === 'sysctl' ? 'host sysctls' : 'configure host side', err, hostIf, hostNs);
  }
  const [cont, alongside] = await Promise.allSettled([
    helper.container({
      containerNetnsPath: container.path, containerIfName: contIf,
      addresses: [...v4.map((a) => `${a}/32`), ...v6.map((a) => `${a}/128`)],
      ipv4Gateway: wired.ipv4Gateway ?? undefined, ipv6Gateway: wired.ipv6Gateway ?? undefined, enableIpv6: v6.length > 0,
    }),
    opts.alongsideContainerSide?.(wired),
  ]);
  if (cont.status === 'rejected') {
    const reason = cont.reason instanceof WireHelperError && cont.reason.stage === 'netns' ? new NetnsNotFoundError(container.path) : cont.reason;
    throw await rollback('configure container side', reason, hostIf, hostNs);
  }
  if (alongside.status === 'rejected') {
    await deleteLink(hostIf, { netns: hostNs }).catch(() => undefined);
    throw alongside.reason;
  }
  return wired;
}

async function rollback(step: string, cause: unknown, hostIf: string, hostNs: Netns | undefined): Promise<WiringError> {
  try {
    await deleteLink(hostIf, { netns: hostNs });
    return new WiringError(step, cause, true);
  } catch {
    return new WiringError(step, cause, false);
  }
}

export interface UnwireOptions {
  hostNetns?: Netns;
  /** Also delete the conntrack entries of the workload's addresses (default true). */
  flushConntrack?: boolean;
  routeProtocol?: number;
}

/**
 * Removes a wired workload: the host veth (which takes the container end, routes, proxy NDP
 * entries and sysctls with it) and the conntrack entries of its addresses. Returns false when
 * there was nothing to remove.
 */
export async function unwireWorkload(endpointId: string, opts: UnwireOptions = {}): Promise<boolean> {
  const hostIf = validateIfName(interfaceNameFor(endpointId), 'endpointId');
  const routes = await listRoutes({ netns: opts.hostNetns, dev: hostIf, protocol: opts.routeProtocol ?? CALICO_ROUTE_PROTOCOL }).catch(() => []);
  const removed = await deleteLink(hostIf, { netns: opts.hostNetns });
  if (opts.flushConntrack ?? true) {
    await Promise.all(routes.map((r) => flushConntrackFor(r.dst, { netns: opts.hostNetns }).catch(() => 0)));
  }
  return removed;
}
