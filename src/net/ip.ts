/**
 * Address math for IPv4 and IPv6, on bigint so one code path serves both families.
 * Node's `net` module validates addresses but does no arithmetic, hence this small module.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '../errors.js';

export type IpVersion = 4 | 6;

export interface IpAddr {
  readonly version: IpVersion;
  readonly value: bigint;
}

export interface Cidr {
  readonly version: IpVersion;
  /** Network address (host bits cleared). */
  readonly network: bigint;
  readonly prefixLength: number;
}

export const bitsOf = (v: IpVersion): number => (v === 4 ? 32 : 128);

export function ipVersionOf(text: string): IpVersion | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return undefined;
}

export function parseIp(text: string): IpAddr {
  const t = text.trim();
  if (isIPv4(t)) {
    const parts = t.split('.').map(Number);
    const value = parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
    return { version: 4, value };
  }
  if (isIPv6(t)) return { version: 6, value: parseIpv6(t) };
  throw new ValidationError(`'${text}' is not a valid IP address`);
}

function parseIpv6(text: string): bigint {
  let t = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const n = parseIp(v4[1]!).value;
    t = t.slice(0, -v4[1]!.length) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head, tail] = t.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function formatIp(addr: IpAddr): string {
  if (addr.version === 4) {
    const v = addr.value;
    return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr.value >> BigInt(i * 16)) & 0xffffn));
  return ipv6GroupsToString(groups);
}

/** Eight 16-bit groups as text, RFC 5952: lower-case hex, the longest run (>1) of zero groups as `::`. */
export function ipv6GroupsToString(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

export function normaliseIp(text: string): string {
  return formatIp(parseIp(text));
}

/** Parses `a.b.c.d/n` (or a bare address, taken as a host route) and clears the host bits. */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  let addr: IpAddr;
  try {
    addr = parseIp(addrText);
  } catch {
    throw new ValidationError(`'${text}' is not a valid CIDR`);
  }
  const bits = bitsOf(addr.version);
  const lenText = slash < 0 ? String(bits) : t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) throw new ValidationError(`'${text}' is not a valid CIDR`);
  const prefixLength = Number(lenText);
  return { version: addr.version, network: addr.value & maskOf(addr.version, prefixLength), prefixLength };
}

export function maskOf(version: IpVersion, prefixLength: number): bigint {
  const bits = BigInt(bitsOf(version));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ version: c.version, value: c.network })}/${c.prefixLength}`;
}

export function normaliseCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.version) - c.prefixLength);
}

export function cidrContains(c: Cidr, addr: IpAddr): boolean {
  return c.version === addr.version && (addr.value & maskOf(c.version, c.prefixLength)) === c.network;
}

/** True when `inner` lies wholly inside `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.version === inner.version && inner.prefixLength >= outer.prefixLength &&
    (inner.network & maskOf(outer.version, outer.prefixLength)) === outer.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

export function addrAt(c: Cidr, offset: bigint): IpAddr {
  return { version: c.version, value: c.network + offset };
}

/** `192.168.0.0/16` -> `192.168.0.0-16`: the form used inside etcd keys. */
export function cidrToKey(text: string): string {
  return normaliseCidr(text).replace('/', '-');
}

export function keyToCidr(key: string): string {
  const i = key.lastIndexOf('-');
  return normaliseCidr(`${key.slice(0, i)}/${key.slice(i + 1)}`);
}

/** The host route for an address: /32 or /128. */
export function hostCidr(addr: string): string {
  const a = parseIp(addr);
  return `${formatIp(a)}/${bitsOf(a.version)}`;
}
