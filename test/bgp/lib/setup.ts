/** etcd records for a speaker test: node, peers, pools, blocks, endpoints. */
import { KV } from '../../../src/datastore/kv.js';
import { keys } from '../../../src/datastore/keys.js';

export async function writeNode(kv: KV, node: string, ipv4?: string, ipv6?: string, extra: { asNum?: number; rrClusterId?: string } = {}): Promise<void> {
  if (ipv4) await kv.put(keys.bgpHostIpV4(node), ipv4);
  if (ipv6) await kv.put(keys.bgpHostIpV6(node), ipv6);
  if (extra.asNum) await kv.put(keys.bgpHostAs(node), String(extra.asNum));
  if (extra.rrClusterId !== undefined) await kv.put(keys.bgpHostRrClusterId(node), extra.rrClusterId);
}

export async function writePool(kv: KV, cidr: string, ipip = false): Promise<void> {
  const v = cidr.includes(':') ? 6 : 4;
  await kv.put(keys.pool(cidr, v), JSON.stringify({ cidr, ipip: ipip ? 'tunl0' : undefined, masquerade: true }));
}

export async function writeBlock(kv: KV, node: string, cidr: string): Promise<void> {
  const v = cidr.includes(':') ? 6 : 4;
  await kv.put(keys.ipamBlock(cidr, v), JSON.stringify({ cidr, affinity: `host:${node}`, strictAffinity: false, allocations: [], unallocated: [], attributes: [] }));
  await kv.put(keys.ipamAffinity(node, cidr, v), '{}');
}

export async function writeEndpoint(kv: KV, node: string, id: string, ipv4: string[], ipv6: string[] = []): Promise<string> {
  const key = keys.workloadEndpoint(node, 'docker', id, id);
  await kv.put(key, JSON.stringify({ state: 'active', name: `cali${id.slice(0, 11)}`, mac: '02:00:00:00:00:01', profile_ids: ['p'], ipv4_nets: ipv4, ipv6_nets: ipv6, ipv4_gateway: null, ipv6_gateway: null }));
  return key;
}

export async function writePeer(kv: KV, scope: { node?: string }, ip: string, asNum: number, extra: { passive?: boolean; port?: number } = {}): Promise<string> {
  const v = ip.includes(':') ? 6 : 4;
  const key = scope.node ? keys.bgpHostPeer(scope.node, ip, v) : keys.bgpGlobalPeer(ip, v);
  await kv.put(key, JSON.stringify({ ip, as_num: String(asNum), ...extra }));
  return key;
}
