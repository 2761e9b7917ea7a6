/**
 * The two "machines": a network namespace each, joined by a veth pair named eth1 at both ends
 * (the Vagrant lab's private network, 172.17.8.0/24), each with a default route as a VM has one.
 * The default route matters: proxy ARP only answers for an address the host has a route to
 * through another interface, and the containers' gateway (169.254.1.1) is reached that way.
 */
import { existsSync } from 'node:fs';
import { LabConfig, HostConfig, hostList, LINK_IFACE, LINK_PREFIX_LEN, GATEWAY } from './config.js';
import { run, runIn } from './proc.js';
import { Progress } from './progress.js';
import { CalicoError } from '../../src/errors.js';

async function must(what: string, p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new CalicoError(`${what} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

export function netnsExists(h: HostConfig): boolean {
  return existsSync(h.netnsPath);
}

/** The address on eth1 when the link is there and up, else undefined. */
export async function linkAddress(h: HostConfig): Promise<string | undefined> {
  if (!netnsExists(h)) return undefined;
  const r = await run('ip', ['-n', h.netns, '-j', '-4', 'addr', 'show', 'dev', LINK_IFACE]);
  if (r.code !== 0 || !r.stdout.trim()) return undefined;
  const [link] = JSON.parse(r.stdout) as Array<{ operstate?: string; addr_info?: Array<{ local?: string }> }>;
  if (!link || link.operstate !== 'UP') return undefined;
  return link.addr_info?.find((a) => a.local)?.local;
}

export async function ensureNamespaces(cfg: LabConfig, say: Progress): Promise<void> {
  const hosts = hostList(cfg);
  for (const h of hosts) {
    if (netnsExists(h)) { say(`${h.name}: network namespace ${h.netns} already there`); continue; }
    await must(`ip netns add ${h.netns}`, run('ip', ['netns', 'add', h.netns]));
    await must('lo up', run('ip', ['-n', h.netns, 'link', 'set', 'lo', 'up']));
    say(`${h.name}: network namespace ${h.netns} created`);
  }
  const [a, b] = hosts as [HostConfig, HostConfig];
  const have = await Promise.all([linkAddress(a), linkAddress(b)]);
  if (have[0] === a.ip && have[1] === b.ip) {
    say(`link ${LINK_IFACE} ${a.ip} <-> ${b.ip} already up`);
  } else {
    // A half-made link (one end missing, or no address) is rebuilt from scratch: deleting one end
    // of a veth pair deletes both.
    for (const h of hosts) await run('ip', ['-n', h.netns, 'link', 'del', LINK_IFACE]);
    await must('creating the veth pair', run('ip', ['link', 'add', LINK_IFACE, 'netns', a.netns, 'type', 'veth', 'peer', 'name', LINK_IFACE, 'netns', b.netns]));
    for (const h of hosts) {
      await must(`addressing ${h.name}`, run('ip', ['-n', h.netns, '-batch', '-'], {
        input: [
          `addr add ${h.ip}/${LINK_PREFIX_LEN} dev ${LINK_IFACE}`,
          `link set ${LINK_IFACE} up`,
          `route replace default via ${GATEWAY} dev ${LINK_IFACE} onlink`,
        ].join('\n') + '\n',
      }));
    }
    say(`link ${LINK_IFACE} ${a.ip} <-> ${b.ip} up (default route via ${GATEWAY} on each)`);
  }
  for (const h of hosts) {
    // What `calicoctl checksystem --fix` would do on a VM; harmless when already set.
    await must(`sysctls in ${h.netns}`, runIn(h.netnsPath, 'sh', ['-c',
      'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding']));
  }
}

export async function deleteNamespaces(cfg: LabConfig, say: Progress): Promise<void> {
  for (const h of hostList(cfg)) {
    if (!netnsExists(h)) continue;
    // The veth pair goes with the first namespace; the routes, nftables and sysctls with each.
    await must(`ip netns del ${h.netns}`, run('ip', ['netns', 'del', h.netns]));
    say(`${h.name}: network namespace ${h.netns} deleted`);
  }
}
