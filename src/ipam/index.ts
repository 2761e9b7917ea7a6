/**
 * Calico block IPAM on the KV (libcalico-go 1.7 / pycalico 0.2+ data model, etcd v3 transactions).
 * See docs in each module; the public surface is re-exported here.
 */
export { autoAssign, assignIp } from './assign.js';
export type { AutoAssignArgs, AssignedIps, AssignIpArgs } from './assign.js';
export { releaseIps, releaseByHandle, releaseHostAffinities, releasePoolAffinities } from './release.js';
export type { AffinityRelease } from './release.js';
export { getAssignmentAttributes, affineBlocks, parseAffinityKey, ipamUsage } from './query.js';
export type { AssignmentAttributes, BlockUsage, PoolUsage, IpamUsage } from './query.js';
export { listPools, poolForIp, findPoolForIp, ensureDefaultPools, DEFAULT_BLOCK_SIZE, BLOCK_SIZE_RANGE } from './pools.js';
export type { PoolInfo } from './pools.js';
export { getIpamConfig, setIpamConfig, parseIpamConfig, DEFAULT_IPAM_CONFIG, IpamConfigLockedError } from './config.js';
export type { IpamConfig } from './config.js';
export type { Attributes } from './block.js';
export {
  IpamExhaustedError, AddressInUseError, AddressNotInPoolError, PoolNotFoundError, AffinityConflictError,
  AddressNotAssignedError, IpamContentionError, CorruptIpamDataError,
} from './errors.js';
