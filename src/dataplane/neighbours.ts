/** Proxy NDP entries: the host answers neighbour solicitations for an IPv6 address on a link. */
import { InNetns } from './netns.js';
import { ip, isNotFoundMessage } from './ip.js';
import { validateIfName } from './links.js';
import { normaliseIp } from '../net/ip.js';
import { CommandFailedError } from './errors.js';

export function proxyNeighbourCommand(address: string, dev: string): string {
  validateIfName(dev);
  return `neigh replace proxy ${normaliseIp(address)} dev ${dev}`;
}

export async function addProxyNeighbour(address: string, dev: string, opts: InNetns = {}): Promise<void> {
  await ip(proxyNeighbourCommand(address, dev).split(' '), opts);
}

export async function deleteProxyNeighbour(address: string, dev: string, opts: InNetns = {}): Promise<boolean> {
  validateIfName(dev);
  try {
    await ip(['neigh', 'del', 'proxy', normaliseIp(address), 'dev', dev], opts);
    return true;
  } catch (err) {
    if (err instanceof CommandFailedError && isNotFoundMessage(err.stderr)) return false;
    throw err;
  }
}

export async function listProxyNeighbours(opts: InNetns & { dev?: string } = {}): Promise<Array<{ address: string; dev: string }>> {
  const args = ['-j', '-6', 'neigh', 'show', 'proxy'];
  if (opts.dev) args.push('dev', validateIfName(opts.dev));
  const out = (await ip(args, opts)).trim();
  if (!out) return [];
  return (JSON.parse(out) as Array<{ dst: string; dev?: string }>).map((r) => ({ address: r.dst, dev: r.dev ?? opts.dev ?? '' }));
}
