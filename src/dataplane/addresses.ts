/** Interface addresses. */
import { InNetns } from './netns.js';
import { ip, ipJson } from './ip.js';
import { validateIfName } from './links.js';
import { parseIp, formatIp, bitsOf } from '../net/ip.js';
import { ValidationError } from '../errors.js';

export interface AddressInfo {
  family: 4 | 6;
  /** `addr/prefixlen`, normalised. */
  cidr: string;
  scope: string;
  dev: string;
}

interface IpAddrJson {
  ifname: string;
  addr_info?: Array<{ family: 'inet' | 'inet6'; local: string; prefixlen: number; scope: string }>;
}

/** `10.0.0.1` -> `10.0.0.1/32`; keeps host bits (unlike normaliseCidr) because this is an interface address. */
export function addressWithPrefix(text: string): string {
  const [addrText, lenText, extra] = text.trim().split('/');
  const a = parseIp(addrText ?? '');
  const bits = bitsOf(a.version);
  if (extra !== undefined || (lenText !== undefined && (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits))) {
    throw new ValidationError(`'${text}' is not a valid interface address`, 'address');
  }
  return `${formatIp(a)}/${lenText === undefined ? bits : Number(lenText)}`;
}

/** The `ip addr add` command (exported for batching). `noDad` skips IPv6 duplicate address detection. */
export function addressAddCommand(dev: string, address: string, opts: { noDad?: boolean } = {}): string {
  validateIfName(dev);
  const a = addressWithPrefix(address);
  const v6 = a.includes(':');
  return ['addr', 'add', a, 'dev', dev, ...(v6 && opts.noDad ? ['nodad'] : [])].join(' ');
}

export async function addAddress(dev: string, address: string, opts: InNetns & { noDad?: boolean } = {}): Promise<void> {
  await ip(addressAddCommand(dev, address, opts).split(' '), opts);
}

export async function deleteAddress(dev: string, address: string, opts: InNetns = {}): Promise<void> {
  validateIfName(dev);
  await ip(['addr', 'del', addressWithPrefix(address), 'dev', dev], opts);
}

export async function listAddresses(opts: InNetns & { dev?: string } = {}): Promise<AddressInfo[]> {
  const args = ['addr', 'show'];
  if (opts.dev) args.push('dev', validateIfName(opts.dev));
  const rows = await ipJson<IpAddrJson>(args, opts);
  const out: AddressInfo[] = [];
  for (const r of rows) {
    for (const a of r.addr_info ?? []) {
      out.push({ family: a.family === 'inet' ? 4 : 6, cidr: `${a.local}/${a.prefixlen}`, scope: a.scope, dev: r.ifname });
    }
  }
  return out;
}
