/** `ipam show|info|release`: who holds an address, usage per pool, and releasing leaked addresses. */
import { kv, say } from '../context.js';
import { emitListing, prettyTable } from '../output.js';
import { validateIp } from '../../src/model/resources.js';
import { CalicoError } from '../../src/errors.js';
import { getAssignmentAttributes, ipamUsage, releaseIps } from '../../src/ipam/index.js';

export async function show(ipText: string | undefined, o: { output?: string }): Promise<void> {
  if (ipText === undefined) {
    const u = await ipamUsage(kv());
    const data = u.pools.map((p) => ({ cidr: p.cidr, blockSize: p.blockSize, blocks: p.blocks.length, total: p.total.toString(), inUse: p.inUse, free: p.free.toString(), disabled: p.disabled }));
    emitListing(o.output, data, () => prettyTable(['Pool', 'Block size', 'Blocks', 'IPs total', 'IPs in use', 'IPs free'],
      data.map((d) => [d.cidr + (d.disabled ? ' (disabled)' : ''), `/${d.blockSize}`, String(d.blocks), d.total, String(d.inUse), d.free])));
    return;
  }
  const ip = validateIp(ipText, 'ip');
  const a = await getAssignmentAttributes(kv(), ip);
  const data = { ip: a.ip, handle: a.handleId, attributes: a.attributes ?? {}, block: a.block, blockAffinity: a.blockAffinity };
  emitListing(o.output, data, () => {
    const lines = [`IP ${a.ip} is assigned in block ${a.block}${a.blockAffinity ? ` (affine to ${a.blockAffinity})` : ''}`];
    if (a.handleId) lines.push(`Handle: ${a.handleId}`);
    const attrs = Object.entries(a.attributes ?? {});
    if (attrs.length === 0) lines.push(`No attributes defined for IP ${a.ip}`);
    for (const [k, v] of attrs) lines.push(`${k}: ${v}`);
    return lines.join('\n');
  });
}

export async function release(ipText: string | undefined): Promise<void> {
  if (ipText === undefined) throw new CalicoError('ipam release needs an address: calicoctl ipam release --ip=<IP>', { exitCode: 2 });
  const ip = validateIp(ipText, 'ip');
  const notAssigned = await releaseIps(kv(), [ip]);
  if (notAssigned.length) throw new CalicoError(`IP address ${ip} is not assigned`);
  say(`Successfully released IP address ${ip}`);
}
