/** `lab status`: per host, what is up and what is down, and its containers. */
import { LabConfig, hostList, LINK_IFACE } from './config.js';
import { netnsExists, linkAddress } from './netns.js';
import { dockerdAnswers, dockerdPid, containerSummaries } from './dockerd.js';
import { etcdAnswers, etcdPid } from './etcd.js';
import { nodePid, nodeStatus } from './node.js';

export interface HostState {
  name: string;
  netns: boolean;
  link?: string;
  dockerd?: number;
  node?: number;
  nodeReady: boolean;
  bgp: string[];
  workloads: Array<{ name: string; state: string }>;
}

export interface LabState { etcd: boolean; etcdPid?: number; hosts: HostState[] }

export async function labState(cfg: LabConfig): Promise<LabState> {
  const hosts = await Promise.all(hostList(cfg).map(async (h): Promise<HostState> => {
    const up = netnsExists(h);
    const dockerd = dockerdPid(h);
    const answers = dockerd !== undefined && await dockerdAnswers(h);
    const node = nodePid(h);
    const s = node ? await nodeStatus(h) : undefined;
    return {
      name: h.name, netns: up, link: up ? await linkAddress(h) : undefined,
      dockerd: answers ? dockerd : undefined, node, nodeReady: s?.ready === true,
      bgp: (s?.bgp ?? []).map((p) => `${p.peerAddress} ${p.state === 'up' ? 'Established' : p.info || p.state}`),
      workloads: answers ? await containerSummaries(h) : [],
    };
  }));
  const etcd = await etcdAnswers(cfg);
  return { etcd, etcdPid: etcd ? etcdPid(cfg) : undefined, hosts };
}

export async function printStatus(cfg: LabConfig): Promise<boolean> {
  const st = await labState(cfg);
  const log = (line: string) => console.log(line.trimEnd());
  const mark = (ok: boolean) => (ok ? 'up  ' : 'down');
  for (const [i, h] of st.hosts.entries()) {
    const hc = hostList(cfg)[i]!;
    log(`${h.name} (${hc.ip})`);
    log(`  namespace ${mark(h.netns)}  ${hc.netns}${h.link ? `, ${LINK_IFACE} ${h.link}` : ''}`);
    log(`  dockerd   ${mark(h.dockerd !== undefined)}  ${h.dockerd ? `pid ${h.dockerd}, ${hc.dockerSocket}` : ''}`);
    log(`  node      ${mark(h.nodeReady)}  ${h.node ? `pid ${h.node}${h.nodeReady ? '' : ' (not ready)'}, proxy tcp://localhost:2377 in the namespace` : ''}`);
    if (h.bgp.length) log(`  bgp       ${h.bgp.join('; ')}`);
    if (cfg.etcdHost === h.name) log(`  etcd      ${mark(st.etcd)}  ${cfg.etcdUrl}${st.etcdPid ? ` (pid ${st.etcdPid})` : ''}`);
    log(`  workloads ${h.workloads.length ? h.workloads.map((w) => `${w.name} (${w.state})`).join(', ') : '(none)'}`);
  }
  return st.etcd && st.hosts.every((h) => h.netns && h.dockerd !== undefined && h.nodeReady);
}
