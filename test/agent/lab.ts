/**
 * A small lab for agent tests: a "host" network namespace (our stand-in for a Calico node, so
 * the real host's tables are never touched) and workloads as bare namespaces wired into it with
 * wireWorkload. Names carry a per-run suffix; `cleanup()` removes every namespace it made.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  Netns, createNetns, deleteNetns, ipBatch, runInNetns, wireWorkload, writeSysctls,
} from '../../src/dataplane/index.js';
import { keys } from '../../src/datastore/keys.js';
import type { KV } from '../../src/datastore/kv.js';
import { StoredWorkloadEndpoint, interfaceNameFor } from '../../src/model/stored.js';

export const HOST_ADDR = '10.99.0.1';

export interface Workload {
  name: string;
  ns: Netns;
  endpointId: string;
  iface: string;
  mac: string;
  ip: string;
  ip6?: string;
}

export class Lab {
  readonly suffix = randomBytes(3).toString('hex');
  readonly made: string[] = [];
  readonly children: ChildProcess[] = [];
  host!: Netns;

  nsName(role: string): string {
    return `ct-${role}-${this.suffix}`.slice(0, 60);
  }

  /** The host namespace: an address on lo (HOST_ADDR) and a default route out of an uplink veth (proxy ARP needs a route to the gateway address that is not the asking interface). */
  async makeHost(): Promise<Netns> {
    const name = this.nsName('host');
    this.host = await createNetns(name);
    this.made.push(name);
    await ipBatch([
      `addr add ${HOST_ADDR}/32 dev lo`,
      'link add up0 type veth peer name up1',
      'link set up0 up',
      'link set up1 up',
      'route add default dev up0',
    ], { netns: this.host });
    await writeSysctls([{ key: 'net/ipv6/conf/all/forwarding', value: '1' }], { netns: this.host });
    return this.host;
  }

  async makeWorkload(name: string, ip: string, opts: { ip6?: string; wire?: boolean } = {}): Promise<Workload> {
    const nsName = this.nsName(`w${name}`);
    const ns = await createNetns(nsName);
    this.made.push(nsName);
    const endpointId = `${name.toLowerCase()}${this.suffix}`.padEnd(12, '0') + randomBytes(4).toString('hex');
    let mac = '';
    if (opts.wire ?? true) {
      const w = await wireWorkload({ netnsPath: ns.path, endpointId, ipv4Addrs: [ip], ipv6Addrs: opts.ip6 ? [opts.ip6] : [], hostNetns: this.host });
      mac = w.mac;
    }
    return { name, ns, endpointId, iface: interfaceNameFor(endpointId), mac, ip, ip6: opts.ip6 };
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const n of this.made.reverse()) await deleteNetns(n).catch(() => undefined);
  }

  /** Starts a long-lived process inside a namespace (stopped by pid in cleanup). */
  spawnIn(ns: Netns, cmd: string, args: string[]): ChildProcess {
    const c = spawn('nsenter', [`--net=${ns.path}`, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(c);
    return c;
  }
}

/** One ICMP echo with a 1 s deadline. */
export async function ping(from: Netns, to: string): Promise<boolean> {
  const cmd = to.includes(':') ? 'ping6' : 'ping';
  try {
    await runInNetns(from, 'busybox', [cmd, '-c', '1', '-W', '1', to]);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `fn` is true (the agent applies asynchronously); false after the deadline. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 10000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until something listens on a TCP port inside a namespace. */
export async function waitListening(ns: Netns, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const out = (await runInNetns(ns, 'ss', ['-Hltn', `sport = :${port}`])).stdout;
    if (out.trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on port ${port}`);
}

/** One TCP connection attempt (1 s connect timeout) that sends a line; true when the listener got it. */
export async function tcpReaches(lab: Lab, from: Netns, to: Workload, port: number): Promise<boolean> {
  const marker = `hello-${randomBytes(4).toString('hex')}`;
  const server = lab.spawnIn(to.ns, 'busybox', ['nc', '-l', '-p', String(port)]);
  let got = '';
  server.stdout!.on('data', (d: Buffer) => { got += d.toString(); });
  const exited = new Promise((r) => server.once('exit', r));
  try {
    await waitListening(to.ns, port);
    try {
      await runInNetns(from, 'sh', ['-c', `echo ${marker} | busybox nc -w 1 ${to.ip} ${port}`], { timeoutMs: 5000 });
    } catch {
      /* timed out: dropped */
    }
    if (!got.includes(marker)) await Promise.race([exited, new Promise((r) => setTimeout(r, 300))]);
    return got.includes(marker);
  } finally {
    if (server.pid !== undefined && server.exitCode === null) { try { process.kill(server.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

export function endpointKey(node: string, w: Workload): string {
  return keys.workloadEndpoint(node, 'docker', w.name, w.endpointId);
}

export function endpointValue(w: Workload, profiles: string[], labels: Record<string, string> = {}, over: Partial<StoredWorkloadEndpoint> = {}): string {
  const ep: StoredWorkloadEndpoint = {
    state: 'active',
    name: w.iface,
    mac: w.mac || null,
    profile_ids: profiles,
    ipv4_nets: [`${w.ip}/32`],
    ipv6_nets: w.ip6 ? [`${w.ip6}/128`] : [],
    ipv4_gateway: '169.254.1.1',
    ipv6_gateway: w.ip6 ? 'fe80::ecee:eeff:feee:eeee' : null,
    labels,
    'container:if_name': 'eth1',
    ...over,
  };
  return JSON.stringify(ep);
}

export async function putEndpoint(kv: KV, node: string, w: Workload, profiles: string[], labels: Record<string, string> = {}, over: Partial<StoredWorkloadEndpoint> = {}): Promise<string> {
  return kv.put(endpointKey(node, w), endpointValue(w, profiles, labels, over));
}

/** A profile with the Powerstrip-era default rules (v0.4.6+). */
export async function putDefaultProfile(kv: KV, name: string): Promise<string> {
  await kv.put(keys.profileTags(name), JSON.stringify([name]));
  return kv.put(keys.profileRules(name), JSON.stringify({ id: name, inbound_rules: [{ action: 'allow', src_tag: name }], outbound_rules: [{ action: 'allow' }] }));
}

/** `nft list table` with handles, counters and element order normalised, blocks sorted by name. */
export function normaliseRuleset(text: string): string {
  const lines = text.split('\n');
  const blocks: string[] = [];
  let cur: string[] = [];
  let depth = 0;
  for (const raw of lines) {
    const line = raw.replace(/\s+#\s*handle \d+/, '').trimEnd();
    if (!line.trim()) continue;
    if (depth === 1 && /^\s*(chain|set|map)\s/.test(line)) cur = [];
    cur.push(line.trim());
    depth += (line.match(/\{/g) ?? []).length - (line.match(/\}/g) ?? []).length;
    if (depth === 1 && cur.length && /^\}/.test(line.trim())) {
      blocks.push(normaliseElements(cur.join('\n')));
      cur = [];
    }
  }
  return blocks.sort().join('\n\n');
}

function normaliseElements(block: string): string {
  return block.replace(/elements = \{([^}]*)\}/gs, (_m, body: string) => {
    const items = body.split(',').map((s) => s.trim()).filter(Boolean).sort();
    return `elements = { ${items.join(', ')} }`;
  });
}
