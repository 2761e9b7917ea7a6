/**
 * Per-interface kernel settings of local workload interfaces (proxy ARP without delay,
 * forwarding, IPv6 forwarding / proxy NDP / no RAs), the proxy NDP entry for an endpoint whose
 * IPv6 gateway is a real host address (Powerstrip-era endpoints used bird6_ip), and the global
 * IPv6 forwarding switch, which IPv6 needs for forwarding at all (per-interface IPv6 forwarding
 * does not enable it on its own).
 *
 * Settings are written once per interface instance (by ifindex: a re-created interface is
 * configured again) and re-read by the drift check.
 */
import { Netns, LinkInfo, SysctlSetting, workloadInterfaceSysctls, writeSysctls, readSysctls, ipBatch, proxyNeighbourCommand } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';
import { LocalEndpointView } from '../calc.js';

const IPV6_FORWARDING = 'net/ipv6/conf/all/forwarding';

export class InterfaceDriver {
  /** iface -> ifindex it was configured at. */
  private configured = new Map<string, number>();
  private proxyNdp = new Map<string, string>();
  /** Checked once, and again after forget() or a drift check. */
  private ipv6ForwardingOk = false;

  constructor(private readonly netns: Netns | undefined, private readonly log: Logger) {}

  forget(): void {
    this.configured.clear();
    this.proxyNdp.clear();
    this.ipv6ForwardingOk = false;
  }

  private settingsFor(ifaces: string[]): SysctlSetting[] {
    return ifaces.flatMap((i) => workloadInterfaceSysctls(i, { ipv6: true }));
  }

  async sync(endpoints: Iterable<LocalEndpointView>, links: ReadonlyMap<string, LinkInfo>): Promise<number> {
    const todo: string[] = [];
    const ndp: string[] = [];
    let anyV6 = false;
    const present = new Set<string>();
    for (const ep of endpoints) {
      const l = links.get(ep.iface);
      if (!l) continue;
      present.add(ep.iface);
      if (ep.nets6.length) anyV6 = true;
      if (this.configured.get(ep.iface) !== l.ifindex) todo.push(ep.iface);
      const gw = ep.ipv6Gateway && !ep.ipv6Gateway.startsWith('fe80:') ? ep.ipv6Gateway : undefined;
      const key = `${ep.iface}/${l.ifindex}`;
      if (gw && this.proxyNdp.get(key) !== gw) {
        ndp.push(proxyNeighbourCommand(gw, ep.iface));
        this.proxyNdp.set(key, gw);
      }
    }
    for (const i of [...this.configured.keys()]) if (!present.has(i)) this.configured.delete(i);
    if (todo.length) {
      const { missing } = await writeSysctls(this.settingsFor(todo), { netns: this.netns });
      // An IPv4 key missing means the interface went away meanwhile: configure it when it is back.
      // (IPv6 keys are missing when IPv6 is off on the host; that is no reason to retry.)
      const gone = new Set(missing.filter((m) => m.startsWith('net/ipv4/')).map((m) => m.split('/')[3]!));
      for (const i of todo) if (!gone.has(i)) this.configured.set(i, links.get(i)!.ifindex);
    }
    if (anyV6 && !this.ipv6ForwardingOk) {
      const cur = (await readSysctls([IPV6_FORWARDING], { netns: this.netns })).get(IPV6_FORWARDING);
      this.ipv6ForwardingOk = true;
      if (cur === '0') {
        this.log.info('enabling IPv6 forwarding (net.ipv6.conf.all.forwarding=1) for IPv6 workloads');
        await writeSysctls([{ key: IPV6_FORWARDING, value: '1' }], { netns: this.netns });
      }
    }
    if (ndp.length) {
      const { failures } = await ipBatch(ndp, { netns: this.netns, force: true });
      for (const f of failures) this.log.warn('proxy NDP entry failed', { command: f.command, error: f.message });
    }
    return todo.length;
  }

  /** Re-reads the settings of configured interfaces; rewrites those that changed. Returns how many were wrong. */
  async repairDrift(): Promise<number> {
    this.ipv6ForwardingOk = false;
    const ifaces = [...this.configured.keys()];
    if (!ifaces.length) return 0;
    const want = this.settingsFor(ifaces);
    const have = await readSysctls(want.map((s) => s.key), { netns: this.netns });
    const wrong = want.filter((s) => have.get(s.key) !== undefined && have.get(s.key) !== s.value);
    if (wrong.length) {
      this.log.warn('interface settings drifted; rewriting them', { settings: wrong.map((w) => w.key).slice(0, 20) });
      await writeSysctls(wrong, { netns: this.netns });
    }
    return wrong.length;
  }
}
