/**
 * tunl0 for pools with IPIP: created (`ip link add tunl0 type ipip`; the kernel's ipip module
 * makes a fallback tunl0 in every namespace when it is loaded, in which case it already
 * exists), brought up with IpInIpMtu, and given IpInIpTunnelAddr when configured. A kernel
 * without IPIP support is reported once and retried on every resync; the nftables side (IPIP
 * accepted only from known nodes) does not depend on it.
 */
import { Netns, getLink, ipBatch, listAddresses, IpBatchError } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';
import { errorMessage } from '../../../src/errors.js';

export type IpipState = 'off' | 'up' | 'unavailable';

export class IpipDriver {
  state: IpipState = 'off';
  private lastKey = '';

  constructor(private readonly netns: Netns | undefined, private readonly log: Logger) {}

  async sync(wanted: boolean, mtu: number, addr: string | undefined, force = false): Promise<IpipState> {
    const key = `${wanted}/${mtu}/${addr ?? ''}`;
    if (!force && key === this.lastKey && this.state !== 'unavailable') return this.state;
    this.lastKey = key;
    if (!wanted) {
      // Like Felix we leave an existing tunl0 alone: other software may use it.
      this.state = 'off';
      return this.state;
    }
    try {
      const cmds: string[] = [];
      if (!(await getLink('tunl0', { netns: this.netns }))) cmds.push('link add name tunl0 type ipip');
      cmds.push(`link set dev tunl0 mtu ${mtu} up`);
      if (addr) {
        const have = await listAddresses({ netns: this.netns, dev: 'tunl0' }).catch(() => []);
        if (!have.some((a) => a.cidr === `${addr}/32`)) cmds.push(`addr replace ${addr}/32 dev tunl0`);
      }
      await ipBatch(cmds, { netns: this.netns });
      if (this.state !== 'up') this.log.info('tunl0 is up for IPIP pools', { mtu, address: addr });
      this.state = 'up';
    } catch (err) {
      const unsupported = err instanceof IpBatchError && /Unknown device type|not supported/i.test(err.message);
      if (this.state !== 'unavailable') {
        this.log.error(unsupported ? 'this kernel has no IPIP support (ipip module); IPIP pools will not work on this host' : 'cannot set up tunl0', { error: errorMessage(err) });
      }
      this.state = 'unavailable';
    }
    return this.state;
  }
}
