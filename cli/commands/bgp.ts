/** The Powerstrip-era BGP commands: global and per-node peers, the node mesh, the default AS. */
import { kv, nodeName, say } from '../context.js';
import { prettyTable, emitListing } from '../output.js';
import { keys } from '../../src/datastore/keys.js';
import { parseAsNumber, validateIp } from '../../src/model/resources.js';
import { DEFAULT_AS, StoredBgpPeer } from '../../src/model/stored.js';
import { ipVersionOf, IpVersion } from '../../src/net/ip.js';
import { CalicoError, UsageError, ValidationError } from '../../src/errors.js';

type Scope = 'global' | 'node';

function peerKey(scope: Scope, ip: string, v: IpVersion): string {
  return scope === 'global' ? keys.bgpGlobalPeer(ip, v) : keys.bgpHostPeer(nodeName(), ip, v);
}

export async function peerAdd(scope: Scope, ipText: string, asWord: string, asText: string): Promise<void> {
  if (asWord !== 'as') throw new UsageError(`expected: peer add <PEER_IP> as <AS_NUM> (got '${asWord}' where 'as' belongs)`);
  let ip: string;
  try { ip = validateIp(ipText, 'PEER_IP'); } catch { throw new ValidationError('Invalid IP address specified.', 'PEER_IP'); }
  let as: number;
  try { as = parseAsNumber(asText, 'AS_NUM'); } catch { throw new ValidationError('Invalid AS Number specified.', 'AS_NUM'); }
  const peer: StoredBgpPeer = { ip, as_num: String(as) };
  await kv().put(peerKey(scope, ip, ipVersionOf(ip)!), JSON.stringify(peer));
}

export async function peerRemove(scope: Scope, ipText: string): Promise<void> {
  let ip: string;
  try { ip = validateIp(ipText, 'PEER_IP'); } catch { throw new ValidationError('Invalid IP address specified.', 'PEER_IP'); }
  const existed = await kv().delete(peerKey(scope, ip, ipVersionOf(ip)!));
  if (!existed) throw new CalicoError(scope === 'global' ? `${ip} is not a globally configured peer.` : `${ip} is not a configured peer for this node.`);
  say(scope === 'global' ? 'BGP peer removed from global configuration' : 'BGP peer removed from node configuration');
}

export async function peerShow(scope: Scope, o: { ipv4?: boolean; ipv6?: boolean; output?: string }): Promise<void> {
  const versions: IpVersion[] = o.ipv4 && !o.ipv6 ? [4] : o.ipv6 && !o.ipv4 ? [6] : [4, 6];
  const data: Array<{ ip: string; asNum: number; version: IpVersion }> = [];
  for (const v of versions) {
    const prefix = scope === 'global' ? keys.bgpGlobalPeerPrefix(v) : keys.bgpHostPeerPrefix(nodeName(), v);
    for (const e of (await kv().list(prefix)).entries) {
      try {
        const p = JSON.parse(e.value) as StoredBgpPeer;
        data.push({ ip: p.ip, asNum: Number(p.as_num), version: v });
      } catch { /* a malformed peer is skipped, as the BGP speaker does */ }
    }
  }
  emitListing(o.output, data.map(({ ip, asNum }) => ({ ip, as_num: asNum })), () => versions.map((v) => {
    const rows = data.filter((d) => d.version === v);
    if (rows.length === 0) return scope === 'global' ? `No global IPv${v} BGP Peers defined.\n` : `No IPv${v} BGP Peers defined for this node.\n`;
    const title = scope === 'global' ? `Global IPv${v} BGP Peer` : `Node specific IPv${v} BGP Peer`;
    return prettyTable([title, 'AS Num'], rows.map((r) => [r.ip, String(r.asNum)]), 'l');
  }).join('\n'));
}

export async function nodeMesh(state?: string): Promise<void> {
  if (state === undefined) {
    const e = await kv().get(keys.bgpNodeMesh);
    let on = true;
    if (e) { try { on = (JSON.parse(e.value) as { enabled?: boolean }).enabled !== false; } catch { on = true; } }
    say(on ? 'on' : 'off');
    return;
  }
  if (state !== 'on' && state !== 'off') throw new UsageError(`node-mesh takes on or off, not '${state}'`);
  await kv().put(keys.bgpNodeMesh, JSON.stringify({ enabled: state === 'on' }));
}

export async function defaultAs(asText?: string): Promise<void> {
  if (asText === undefined) {
    say((await kv().get(keys.bgpGlobalAs))?.value || String(DEFAULT_AS));
    return;
  }
  let as: number;
  try { as = parseAsNumber(asText, 'AS_NUM'); } catch { throw new ValidationError('Invalid AS Number specified.', 'AS_NUM'); }
  await kv().put(keys.bgpGlobalAs, String(as));
}
