/** Links: veth pairs, up/down, MAC addresses, listing by name prefix, deletion. */
import { Netns, InNetns, describeNetns } from './netns.js';
import { ip, ipBatch, ipJson, isNotFoundMessage, isExistsMessage } from './ip.js';
import { CommandFailedError, IpBatchError, LinkExistsError, LinkNotFoundError } from './errors.js';
import { ValidationError } from '../errors.js';
import { randomBytes } from 'node:crypto';

export interface LinkInfo {
  name: string;
  ifindex: number;
  mac?: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  operState: string;
  mtu: number;
  kind?: string;
}

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  operstate?: string;
  address?: string;
  linkinfo?: { info_kind?: string };
}

const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function validateIfName(name: string, field = 'interface'): string {
  if (!IFNAME_RE.test(name) || name === '.' || name === '..') {
    throw new ValidationError(`'${name}' is not a valid interface name (at most 15 letters, digits, '_', '.', '-')`, field);
  }
  return name;
}

/** Lower-cases and checks a MAC address (aa:bb:cc:dd:ee:ff). */
export function normaliseMac(mac: string, field = 'mac'): string {
  const m = mac.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(m)) throw new ValidationError(`'${mac}' is not a MAC address (expected aa:bb:cc:dd:ee:ff)`, field);
  if (parseInt(m.slice(0, 2), 16) & 1) throw new ValidationError(`'${mac}' is a multicast MAC address; an interface needs a unicast one`, field);
  return m;
}

/** A random unicast, locally administered MAC (what the kernel would pick for a veth). */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function toInfo(j: IpLinkJson): LinkInfo {
  return {
    name: j.ifname,
    ifindex: j.ifindex,
    mac: j.address,
    up: (j.flags ?? []).includes('UP'),
    operState: j.operstate ?? 'UNKNOWN',
    mtu: j.mtu,
    kind: j.linkinfo?.info_kind,
  };
}

export async function listLinks(opts: InNetns & { prefix?: string } = {}): Promise<LinkInfo[]> {
  const rows = await ipJson<IpLinkJson>(['-d', 'link', 'show'], opts);
  const all = rows.map(toInfo);
  return opts.prefix ? all.filter((l) => l.name.startsWith(opts.prefix!)) : all;
}

export async function getLink(name: string, opts: InNetns = {}): Promise<LinkInfo | undefined> {
  validateIfName(name);
  try {
    const rows = await ipJson<IpLinkJson>(['-d', 'link', 'show', 'dev', name], opts);
    return rows[0] ? toInfo(rows[0]) : undefined;
  } catch (err) {
    if (err instanceof CommandFailedError && isNotFoundMessage(err.stderr)) return undefined;
    throw err;
  }
}

export interface VethSpec extends InNetns {
  /** Name of the end that stays in `netns`. */
  name: string;
  /** Name the other end gets in `peerNetns`. */
  peerName: string;
  /** Where the peer end goes (created there directly, so it never appears under a temporary name). */
  peerNetns?: Netns;
  mac?: string;
  peerMac?: string;
  mtu?: number;
}

/** The `ip link add` command for a veth pair (exported for batching with other commands). */
export function vethAddCommand(spec: VethSpec): string {
  validateIfName(spec.name);
  validateIfName(spec.peerName, 'peerName');
  const parts = ['link', 'add', spec.name];
  if (spec.mac) parts.push('address', normaliseMac(spec.mac));
  if (spec.mtu) parts.push('mtu', String(spec.mtu));
  parts.push('type', 'veth', 'peer', 'name', spec.peerName);
  if (spec.peerMac) parts.push('address', normaliseMac(spec.peerMac, 'peerMac'));
  if (spec.mtu) parts.push('mtu', String(spec.mtu));
  if (spec.peerNetns) parts.push('netns', spec.peerNetns.path);
  return parts.join(' ');
}

/**
 * Creates a veth pair, the peer end directly inside `peerNetns` under its final name (the
 * kernel supports creating the peer in another namespace, so there is no temporary name to
 * clean up if we die half-way). Both ends are left down.
 */
export async function createVethPair(spec: VethSpec): Promise<void> {
  try {
    await ipBatch([vethAddCommand(spec)], { netns: spec.netns });
  } catch (err) {
    if (err instanceof IpBatchError && isExistsMessage(err.failures[0]?.message ?? '')) {
      throw new LinkExistsError(`${spec.name} or ${spec.peerName}`, describeNetns(spec.netns));
    }
    throw err;
  }
}

async function linkSet(name: string, args: string[], opts: InNetns): Promise<void> {
  validateIfName(name);
  try {
    await ip(['link', 'set', 'dev', name, ...args], opts);
  } catch (err) {
    if (err instanceof CommandFailedError && isNotFoundMessage(err.stderr)) throw new LinkNotFoundError(name, describeNetns(opts.netns));
    throw err;
  }
}

export const setLinkUp = (name: string, opts: InNetns = {}) => linkSet(name, ['up'], opts);
export const setLinkDown = (name: string, opts: InNetns = {}) => linkSet(name, ['down'], opts);
export const setLinkMac = (name: string, mac: string, opts: InNetns = {}) => linkSet(name, ['address', normaliseMac(mac)], opts);
export const setLinkMtu = (name: string, mtu: number, opts: InNetns = {}) => linkSet(name, ['mtu', String(mtu)], opts);
/** Moves a link into another namespace, optionally renaming it on the way. */
export const moveLink = (name: string, target: Netns, opts: InNetns & { newName?: string } = {}) =>
  linkSet(name, ['netns', target.path, ...(opts.newName ? ['name', validateIfName(opts.newName)] : [])], opts);

export async function getLinkMac(name: string, opts: InNetns = {}): Promise<string> {
  const l = await getLink(name, opts);
  if (!l) throw new LinkNotFoundError(name, describeNetns(opts.netns));
  if (!l.mac) throw new LinkNotFoundError(`${name} (no MAC address)`, describeNetns(opts.netns));
  return l.mac;
}

/** Deletes a link (for a veth, both ends go). Returns false when it did not exist. */
export async function deleteLink(name: string, opts: InNetns = {}): Promise<boolean> {
  validateIfName(name);
  try {
    await ip(['link', 'del', 'dev', name], opts);
    return true;
  } catch (err) {
    if (err instanceof CommandFailedError && isNotFoundMessage(err.stderr)) return false;
    throw err;
  }
}
