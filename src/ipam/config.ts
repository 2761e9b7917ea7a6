/**
 * Cluster-wide IPAM settings, `/calico/ipam/v2/config` `{strict_affinity, auto_allocate_blocks}`.
 * A missing key means Calico's defaults: borrowing allowed, blocks claimed on demand.
 */
import { KV } from '../datastore/kv.js';
import { keys } from '../datastore/keys.js';
import { CalicoError, ConflictError, ValidationError } from '../errors.js';

export interface IpamConfig {
  strict_affinity: boolean;
  auto_allocate_blocks: boolean;
}

export const DEFAULT_IPAM_CONFIG: Readonly<IpamConfig> = { strict_affinity: false, auto_allocate_blocks: true };

export function parseIpamConfig(text: string | undefined): IpamConfig {
  if (text === undefined || text.trim() === '') return { ...DEFAULT_IPAM_CONFIG };
  let raw: Partial<IpamConfig>;
  try { raw = JSON.parse(text) as Partial<IpamConfig>; } catch { return { ...DEFAULT_IPAM_CONFIG }; }
  return {
    strict_affinity: typeof raw.strict_affinity === 'boolean' ? raw.strict_affinity : DEFAULT_IPAM_CONFIG.strict_affinity,
    auto_allocate_blocks: typeof raw.auto_allocate_blocks === 'boolean' ? raw.auto_allocate_blocks : DEFAULT_IPAM_CONFIG.auto_allocate_blocks,
  };
}

export async function getIpamConfig(kv: KV): Promise<IpamConfig> {
  return parseIpamConfig((await kv.get(keys.ipamConfig))?.value);
}

export class IpamConfigLockedError extends CalicoError {
  constructor() {
    super('the IPAM configuration can only be changed while no IPAM blocks exist', {
      hint: 'release every address (and host affinity) first, or leave the configuration as it is',
    });
  }
}

/**
 * Stores the config. As in Calico 1.x it may change only while no block exists, because each
 * block records `strictAffinity` when it is made and would otherwise disagree with the setting.
 */
export async function setIpamConfig(kv: KV, cfg: IpamConfig): Promise<void> {
  if (!cfg.strict_affinity && !cfg.auto_allocate_blocks) {
    // With neither, a host could never get an address: no new blocks and no borrowing.
    throw new ValidationError('strict_affinity and auto_allocate_blocks cannot both be off', 'auto_allocate_blocks');
  }
  const [blocks4, blocks6, current] = await Promise.all([
    kv.list(keys.ipamBlockPrefix(4)), kv.list(keys.ipamBlockPrefix(6)), kv.get(keys.ipamConfig),
  ]);
  const value = JSON.stringify({ strict_affinity: cfg.strict_affinity, auto_allocate_blocks: cfg.auto_allocate_blocks });
  if (current?.value === value) return;
  if (blocks4.entries.length + blocks6.entries.length > 0) throw new IpamConfigLockedError();
  try {
    await kv.txn([{ key: keys.ipamConfig, modRevision: current?.modRevision ?? '0' }], [{ op: 'put', key: keys.ipamConfig, value }]);
  } catch (err) {
    if (err instanceof ConflictError) throw new CalicoError('the IPAM configuration was changed by someone else meanwhile; check it and try again');
    throw err;
  }
}
