/**
 * `calicoctl container ...`: network a running container by hand, with the same wiring code as the
 * Docker proxy (proxy/workload), and the originals' messages.
 */
import http from 'node:http';
import type { Command } from 'commander';
import { kv, nodeName, say, hostNetnsRef } from '../context.js';
import { requireRoot } from './node.js';
import { readStatus } from '../../node/status.js';
import { nodePaths, runDir } from '../../node/paths.js';
import { createDaemonClient, DaemonClient, ContainerInspect } from '../../proxy/daemon-client.js';
import { WorkloadManager } from '../../proxy/workload/manager.js';
import { endpointsOfContainer, DockerEndpoint } from '../../proxy/workload/endpoints.js';
import { createLogger } from '../../src/log.js';
import { CalicoError, NotFoundError, UsageError } from '../../src/errors.js';
import { ipVersionOf, normaliseIp, parseCidr } from '../../src/net/ip.js';
import { assignIp, autoAssign, releaseIps, poolForIp, listPools } from '../../src/ipam/index.js';
import { updateEndpoint, changeProfiles } from '../../src/datastore/endpoints.js';
import { profileExists } from '../../src/datastore/profiles.js';
import { validateProfileName } from '../../src/model/resources.js';
import { ipBatch, netnsOfPid, netnsByName, netnsByPath, CALICO_ROUTE_PROTOCOL, routeReplaceCommand, routeDeleteCommand, addressAddCommand } from '../../src/dataplane/index.js';
import { interfaceNameFor } from '../../src/model/stored.js';

const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * The Docker daemon to talk to: --docker-socket, else DOCKER_HOST when it is a unix socket, else
 * the daemon the running node's proxy forwards to (DOCKER_HOST usually points at that proxy, whose
 * tcp port this client cannot use), else the default socket.
 */
async function dockerSocket(o: { dockerSocket?: string }): Promise<string> {
  if (o.dockerSocket && o.dockerSocket !== DEFAULT_DOCKER_SOCKET) return o.dockerSocket;
  const h = process.env.DOCKER_HOST;
  if (h?.startsWith('unix://')) return h.slice('unix://'.length);
  const status = await readStatus(nodePaths(runDir()).statusSocket, 1000);
  return status?.dockerSocket ?? DEFAULT_DOCKER_SOCKET;
}

async function manager(o: { dockerSocket?: string }): Promise<WorkloadManager> {
  const daemon = createDaemonClient(await dockerSocket(o), new http.Agent({ keepAlive: false }));
  const ns = hostNetnsRef();
  return new WorkloadManager({
    kv: kv(), nodeName: nodeName(), daemon, logger: createLogger({ level: 'warn' }),
    hostNetns: ns ? (ns.includes('/') ? netnsByPath(ns) : netnsByName(ns)) : undefined,
  });
}

async function inspect(daemon: DaemonClient, ref: string): Promise<ContainerInspect> {
  let c: ContainerInspect | undefined;
  try {
    c = await daemon.inspectContainer(ref);
  } catch (err) {
    throw new CalicoError('Unable to run docker commands. Is the docker daemon running?', { cause: err, hint: `(tried ${daemon.socketPath}; set --docker-socket or DOCKER_HOST=unix://...)` });
  }
  if (!c) throw new NotFoundError(`Container ${ref} was not found.`);
  return c;
}

export async function add(ref: string, ipText: string, o: { interface: string }, g: { dockerSocket?: string }): Promise<void> {
  requireRoot('container add');
  const mgr = await manager(g);
  const c = await inspect(mgr.daemon, ref);
  if ((await mgr.endpoints(c.Id)).length) throw new CalicoError(`${ref} has already been configured with Calico Networking.`);
  if (!c.State.Running || !c.State.Pid) throw new CalicoError(`${ref} is not currently running.`);
  const handleId = mgr.handleOf(c.Id);
  const attrs = { container: c.Name.replace(/^\//, ''), node: mgr.nodeName };
  let ipv4: string[] = [];
  let ipv6: string[] = [];
  const t = ipText.trim().toLowerCase();
  if (t === 'auto' || t === 'ipv4' || t === 'ipv6' || t.includes('/')) {
    // auto/ipv4/ipv6: from any pool of that family; a CIDR: from that pool.
    let version: 4 | 6 = t === 'ipv6' ? 6 : 4;
    let pools: string[] | undefined;
    if (t.includes('/')) {
      const cidr = parseCidr(ipText);
      version = cidr.version;
      const hit = (await listPools(kv())).find((p) => parseCidr(p.cidr).network === cidr.network && parseCidr(p.cidr).prefixLength === cidr.prefixLength);
      if (!hit) throw new CalicoError(`${ipText} is not a configured pool.`);
      pools = [hit.cidr];
    }
    if (version === 6 && !(await mgr.nodeHasIpv6())) throw new CalicoError('This node is not configured for IPv6.');
    ({ ipv4, ipv6 } = await autoAssign(kv(), { node: mgr.nodeName, num4: version === 4 ? 1 : 0, num6: version === 6 ? 1 : 0, handleId, attrs, pools }));
  } else {
    const v = ipVersionOf(ipText.trim());
    if (!v) throw new CalicoError('Invalid IP address specified.');
    const ip = normaliseIp(ipText);
    if (!(await poolForIp(kv(), ip))) throw new CalicoError(`${ip} is not in any configured pools`);
    if (v === 6 && !(await mgr.nodeHasIpv6())) throw new CalicoError('This node is not configured for IPv6.');
    const got = await assignIp(kv(), { ip, node: mgr.nodeName, handleId, attrs }).catch((err: unknown) => {
      if ((err as Error).name === 'AddressInUseError') throw new CalicoError(`IP address is already assigned in pool ${ip}`, { cause: err });
      throw err;
    });
    if (v === 4) ipv4 = [got]; else ipv6 = [got];
  }
  const res = { containerId: c.Id, containerName: c.Name, endpointId: (await import('../../proxy/workload/endpoints.js')).newEndpointId(), ipv4, ipv6, profiles: [] as string[], allocated: [...ipv4, ...ipv6] };
  try {
    await new WorkloadManager({ ...mgr.opts, containerIfName: o.interface }).wire(res, c);
  } catch (err) {
    await mgr.release(res).catch(() => undefined);
    throw err;
  }
  say(`IP ${[...ipv4, ...ipv6].join(', ')} added to ${ref}`);
}

export async function remove(ref: string, g: { dockerSocket?: string }): Promise<void> {
  requireRoot('container remove');
  const mgr = await manager(g);
  let id: string;
  try {
    id = (await inspect(mgr.daemon, ref)).Id;
  } catch (err) {
    // The original failed once the container had been `docker rm`ed (calicoctl#501): look for
    // records of a container id that starts with what was given, and clean those up anyway.
    if (!(err instanceof NotFoundError) || !/^[0-9a-f]{6,64}$/.test(ref)) throw err;
    const { entries } = await kv().list(`/calico/v1/host/${encodeURIComponent(mgr.nodeName)}/workload/docker/${ref}`, { keysOnly: true });
    const m = entries.length ? /\/workload\/docker\/([0-9a-f]{64})\//.exec(entries[0]!.key) : null;
    if (!m) throw err;
    id = m[1]!;
  }
  if (!(await mgr.withContainerLock(id, () => mgr.teardown(id)))) throw new CalicoError(`Container ${ref} doesn't contain any endpoints`);
  say(`Removed Calico interface from ${ref}`);
}

async function theEndpoint(mgr: WorkloadManager, c: ContainerInspect): Promise<DockerEndpoint> {
  const [ep] = await endpointsOfContainer(kv(), mgr.nodeName, c.Id);
  if (!ep) throw new NotFoundError(`No endpoint was found for ${c.Name.replace(/^\//, '')}`);
  return ep;
}

export async function perContainer(ref: string | undefined, args: string[], o: { interface: string; dockerSocket: string }, cmd: Command): Promise<void> {
  if (!ref) { cmd.outputHelp(); throw new UsageError('container needs a subcommand'); }
  const [area, action, ...rest] = args;
  const mgr = await manager(o);
  if (area === 'endpoint-id' || area === 'endpoint') {
    if (action !== 'show') throw new UsageError(`expected: container ${ref} endpoint-id show`);
    const c = await inspect(mgr.daemon, ref);
    const [ep] = await mgr.endpoints(c.Id);
    if (!ep) throw new NotFoundError(`No endpoint was found for ${ref}`);
    say(ep.endpointId);
    return;
  }
  if (area === 'profile') {
    const c = await inspect(mgr.daemon, ref);
    const ep = await theEndpoint(mgr, c);
    if (action !== 'append' && action !== 'remove' && action !== 'set') throw new UsageError('expected: container <C> profile append|remove|set [PROFILES...]');
    if (action !== 'set' && rest.length === 0) throw new UsageError(`profile ${action} needs at least one profile name`);
    for (const p of rest) {
      validateProfileName(p, 'profile');
      if (!(await profileExists(kv(), p))) throw new NotFoundError(`Profile with name ${p} was not found.`);
    }
    await updateEndpoint(kv(), ep.key, (cur) => ({ ep: { ...cur, profile_ids: changeProfiles(cur.profile_ids, action, rest) }, result: undefined }));
    say(action === 'append' ? `Profile(s) ${rest.join(', ')} appended.` : action === 'set' ? `Profile(s) ${rest.join(', ')} set.` : `Profile(s) ${rest.join(', ')} removed.`);
    return;
  }
  if (area === 'ip') {
    requireRoot(`container ${ref} ip ${action ?? ''}`);
    if ((action !== 'add' && action !== 'remove') || rest.length !== 1) throw new UsageError(`expected: container ${ref} ip add|remove <IP>`);
    const v = ipVersionOf(rest[0]!);
    if (!v) throw new CalicoError('Invalid IP address specified.');
    const ip = normaliseIp(rest[0]!);
    const c = await inspect(mgr.daemon, ref);
    let ep: DockerEndpoint;
    try {
      ep = await theEndpoint(mgr, c);
      if (!c.State.Running) throw new Error('not running');
    } catch {
      throw new CalicoError('Failed to add IP address to container.', {
        hint: 'The container must be running and networked by Calico: start it through the Docker proxy (DOCKER_HOST=localhost:2377) with CALICO_IP, or use `calicoctl container add`.',
      });
    }
    const net = `${ip}/${v === 4 ? 32 : 128}`;
    const listKey = v === 4 ? 'ipv4_nets' : 'ipv6_nets';
    const hostIf = interfaceNameFor(ep.endpointId);
    const contIf = ep.ep['container:if_name'] ?? o.interface;
    if (action === 'add') {
      if (ep.ep[listKey].includes(net)) throw new CalicoError(`IP address ${ip} is already assigned to the container.`);
      if (!(await poolForIp(kv(), ip))) throw new CalicoError(`${ip} is not in any configured pools`);
      await assignIp(kv(), { ip, node: mgr.nodeName, handleId: mgr.handleOf(c.Id), attrs: { container: c.Name.replace(/^\//, '') } });
      try {
        await ipBatch([addressAddCommand(contIf, net, { noDad: v === 6 })], { netns: netnsOfPid(c.State.Pid) });
        await ipBatch([routeReplaceCommand({ dst: ip, dev: hostIf }, CALICO_ROUTE_PROTOCOL)], { netns: mgr.opts.hostNetns });
        await updateEndpoint(kv(), ep.key, (cur) => ({ ep: { ...cur, [listKey]: [...cur[listKey], net].sort() }, result: undefined }));
      } catch (err) {
        await ipBatch([`addr del ${net} dev ${contIf}`], { netns: netnsOfPid(c.State.Pid) }).catch(() => undefined);
        await ipBatch([routeDeleteCommand({ dst: ip, dev: hostIf }, CALICO_ROUTE_PROTOCOL)], { netns: mgr.opts.hostNetns }).catch(() => undefined);
        await releaseIps(kv(), [ip]);
        throw err;
      }
      say(`IP ${ip} added to ${c.Id}`);
    } else {
      if (!ep.ep[listKey].includes(net)) throw new CalicoError('IP address is not assigned to container. Aborting.');
      await updateEndpoint(kv(), ep.key, (cur) => ({ ep: { ...cur, [listKey]: cur[listKey].filter((n) => n !== net) }, result: undefined }));
      await ipBatch([`addr del ${net} dev ${contIf}`], { netns: netnsOfPid(c.State.Pid) }).catch(() => undefined);
      await ipBatch([routeDeleteCommand({ dst: ip, dev: hostIf }, CALICO_ROUTE_PROTOCOL)], { netns: mgr.opts.hostNetns }).catch(() => undefined);
      await releaseIps(kv(), [ip]);
      say(`IP ${ip} removed from ${ref}`);
    }
    return;
  }
  throw new UsageError(`unknown container command '${[ref, ...args].join(' ')}'`, 'expected: container add|remove, or container <C> ip|endpoint-id|profile ...');
}
