/** The Powerstrip-era `pool` commands. */
import { kv, say } from '../context.js';
import { prettyTable, emitListing } from '../output.js';
import { listResources, writeResources, deleteResources } from '../../src/datastore/resources.js';
import { IpPoolResource, validateCidr, validateResource } from '../../src/model/resources.js';
import { parseCidr } from '../../src/net/ip.js';
import { CalicoError } from '../../src/errors.js';

export async function add(cidrs: string[], o: { ipip?: boolean; natOutgoing?: boolean }): Promise<void> {
  const pools = cidrs.map((c) => {
    const cidr = validateCidr(c, 'CIDR');
    if (o.ipip && parseCidr(cidr).version === 6) throw new CalicoError('IP in IP not supported for IPv6 pools');
    return validateResource({
      apiVersion: 'v1', kind: 'ipPool', metadata: { cidr },
      spec: { ...(o.ipip ? { ipip: { enabled: true } } : {}), 'nat-outgoing': o.natOutgoing === true },
    }, `pool ${cidr}`) as IpPoolResource;
  });
  // Re-adding an existing pool overwrites its options, as the original did.
  await writeResources(kv(), pools, 'apply');
}

export async function remove(cidrs: string[]): Promise<void> {
  const existing = await listResources(kv(), 'ipPool');
  const targets: IpPoolResource[] = [];
  for (const c of cidrs) {
    const cidr = validateCidr(c, 'CIDR');
    const hit = existing.find((p) => p.kind === 'ipPool' && p.metadata.cidr === cidr) as IpPoolResource | undefined;
    if (!hit) throw new CalicoError(`${cidr} is not a configured pool.`);
    targets.push(hit);
  }
  await deleteResources(kv(), targets);
}

export async function show(o: { ipv4?: boolean; ipv6?: boolean; output?: string }): Promise<void> {
  const pools = (await listResources(kv(), 'ipPool')) as IpPoolResource[];
  const versions = o.ipv4 && !o.ipv6 ? [4] : o.ipv6 && !o.ipv4 ? [6] : [4, 6];
  const options = (p: IpPoolResource) => [
    ...(p.spec.ipip?.enabled ? ['ipip'] : []),
    ...(p.spec['nat-outgoing'] ? ['nat-outgoing'] : []),
    ...(p.spec.disabled ? ['disabled'] : []),
  ];
  const data = pools
    .filter((p) => versions.includes(parseCidr(p.metadata.cidr).version))
    .map((p) => ({ cidr: p.metadata.cidr, version: parseCidr(p.metadata.cidr).version, options: options(p) }));
  emitListing(o.output, data, () => versions.map((v) => prettyTable([`IPv${v} CIDR`, 'Options'],
    data.filter((d) => d.version === v).map((d) => [d.cidr, d.options.join(',')]))).join('\n'));
}

export { say };
