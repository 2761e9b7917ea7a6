/**
 * Typed IPAM errors. Each names the address, pool or block involved and says what to do, because
 * the CLI and the Docker proxy print these messages to users as they are.
 */
import { CalicoError } from '../errors.js';

/** Fewer addresses than requested could be found. Partial results were already released. */
export class IpamExhaustedError extends CalicoError {
  constructor(
    readonly version: 4 | 6,
    readonly requested: number,
    readonly found: number,
    readonly node: string,
    reason: string,
  ) {
    super(`could assign only ${found} of ${requested} IPv${version} address${requested === 1 ? '' : 'es'} for host ${node}: ${reason}`, {
      hint: 'add an IP pool with `calicoctl pool add <CIDR>`, enable a disabled one, or release unused addresses with `calicoctl ipam release --ip=<IP>`',
    });
  }
}

/** The requested address is already allocated. */
export class AddressInUseError extends CalicoError {
  constructor(readonly ip: string, readonly handleId: string | null) {
    super(`${ip} is already assigned (${handleId === null ? 'no handle' : `handle ${handleId}`})`, {
      hint: `pick another address, or if it leaked, free it with \`calicoctl ipam release --ip=${ip}\``,
    });
  }
}

/** An explicit address lies in no enabled pool. */
export class AddressNotInPoolError extends CalicoError {
  constructor(readonly ip: string, readonly disabledPool?: string) {
    super(
      disabledPool === undefined
        ? `${ip} is not in any enabled IP pool: add one with \`calicoctl pool add <CIDR>\``
        : `${ip} is only in IP pool ${disabledPool}, which is disabled: enable it or pick an address in an enabled pool`,
    );
  }
}

/** A pool named in a request (`pools: [...]`) does not exist. */
export class PoolNotFoundError extends CalicoError {
  constructor(readonly cidr: string) {
    super(`IP pool ${cidr} does not exist: create it with \`calicoctl pool add ${cidr}\` or request another pool`);
  }
}

/** Strict affinity: the block holding the address belongs to another host. */
export class AffinityConflictError extends CalicoError {
  constructor(readonly ip: string, readonly block: string, readonly owner: string, readonly node: string) {
    super(`${ip} is in block ${block}, which belongs to host ${owner} with strict affinity, so host ${node} cannot use it`, {
      hint: 'pick an address in a block of this host, or turn strict affinity off (only possible while no blocks exist)',
    });
  }
}

/** An address that is not allocated was looked up. */
export class AddressNotAssignedError extends CalicoError {
  constructor(readonly ip: string) {
    super(`IP address ${ip} is not assigned`);
  }
}

/** Too many concurrent writers on one block: the compare-and-swap kept losing. */
export class IpamContentionError extends CalicoError {
  constructor(readonly key: string, readonly attempts: number) {
    super(`gave up writing ${key} after ${attempts} conflicting writes: excessive concurrent IPAM requests`, {
      hint: 'try again',
    });
  }
}

/** Stored IPAM data that does not parse. Names the key so it can be inspected or removed. */
export class CorruptIpamDataError extends CalicoError {
  constructor(readonly key: string, detail: string) {
    super(`IPAM record ${key} is corrupt: ${detail}`, {
      hint: `inspect it with \`etcdctl get ${key}\`; remove it only if no workload uses its addresses`,
    });
  }
}
