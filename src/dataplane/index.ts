/**
 * Dataplane primitives shared by the node agent, the Docker proxy and calicoctl: network
 * namespaces, links, addresses, routes, sysctls, conntrack, nftables and workload wiring.
 *
 * Every function takes `{ netns }` (default: this process's namespace). `inNetns(ns)` returns
 * the same API with the namespace bound, for code that works on one namespace throughout.
 */
export * from './errors.js';
export * from './exec.js';
export * from './netns.js';
export * from './ip.js';
export * from './links.js';
export * from './addresses.js';
export * from './routes.js';
export * from './sysctl.js';
export * from './conntrack.js';
export * from './neighbours.js';
export * from './wire-helper.js';
export * from './nftables.js';
export * from './wire.js';

import { Netns, runInNetns } from './netns.js';
import * as links from './links.js';
import * as addresses from './addresses.js';
import * as routes from './routes.js';
import * as sysctl from './sysctl.js';
import * as conntrack from './conntrack.js';
import * as neighbours from './neighbours.js';
import * as nft from './nftables.js';
import { ipBatch } from './ip.js';
import { RunOptions } from './exec.js';

/** The primitives bound to one namespace: "run this code inside that namespace". */
export function inNetns(netns: Netns) {
  const o = { netns };
  return {
    netns,
    run: (cmd: string, args: string[], opts: RunOptions = {}) => runInNetns(netns, cmd, args, opts),
    ipBatch: (cmds: string[], opts: { force?: boolean } = {}) => ipBatch(cmds, { ...opts, netns }),
    listLinks: (prefix?: string) => links.listLinks({ ...o, prefix }),
    getLink: (name: string) => links.getLink(name, o),
    createVethPair: (spec: Omit<links.VethSpec, 'netns'>) => links.createVethPair({ ...spec, netns }),
    setLinkUp: (name: string) => links.setLinkUp(name, o),
    setLinkDown: (name: string) => links.setLinkDown(name, o),
    setLinkMac: (name: string, mac: string) => links.setLinkMac(name, mac, o),
    getLinkMac: (name: string) => links.getLinkMac(name, o),
    deleteLink: (name: string) => links.deleteLink(name, o),
    addAddress: (dev: string, addr: string, opts: { noDad?: boolean } = {}) => addresses.addAddress(dev, addr, { ...opts, netns }),
    deleteAddress: (dev: string, addr: string) => addresses.deleteAddress(dev, addr, o),
    listAddresses: (dev?: string) => addresses.listAddresses({ ...o, dev }),
    applyRouteChanges: (c: routes.RouteChanges, protocol?: number) => routes.applyRouteChanges(c, { ...o, protocol }),
    listRoutes: (opts: { protocol?: number; dev?: string; family?: 4 | 6 } = {}) => routes.listRoutes({ ...opts, netns }),
    writeSysctls: (s: sysctl.SysctlSetting[], strict = false) => sysctl.writeSysctls(s, { ...o, strict }),
    readSysctls: (keys: string[]) => sysctl.readSysctls(keys, o),
    flushConntrackFor: (addr: string) => conntrack.flushConntrackFor(addr, o),
    addProxyNeighbour: (addr: string, dev: string) => neighbours.addProxyNeighbour(addr, dev, o),
    nftApply: (script: string, table?: nft.NftTableRef) => nft.nftApply(script, { ...o, table }),
    nftListTable: (table: nft.NftTableRef, json = false) => nft.nftListTable(table, { ...o, json }),
    nftDeleteTable: (table: nft.NftTableRef) => nft.nftDeleteTable(table, o),
  };
}
