/**
 * What a container asks of Calico, read from its environment: `CALICO_IP` (an IPv4 or IPv6
 * address, or `auto`) and `CALICO_PROFILE` (one profile name, or several separated by commas).
 * Validated when the container is created, so a bad value never gets as far as a container.
 */
import { ValidationError } from '../../src/errors.js';
import { ipVersionOf, normaliseIp } from '../../src/net/ip.js';
import { validateProfileName } from '../../src/model/resources.js';

export interface CalicoRequest {
  /** 'auto', or one normalised address. */
  ip: 'auto' | { address: string; version: 4 | 6 };
  profiles: string[];
}

export function envValue(env: readonly string[] | null | undefined, name: string): string | undefined {
  if (!env) return undefined;
  let value: string | undefined;
  // The daemon uses the last definition of a variable; so do we.
  for (const e of env) if (e.startsWith(`${name}=`)) value = e.slice(name.length + 1);
  return value;
}

/** Undefined when the container does not ask for Calico networking (no CALICO_IP). */
export function parseCalicoRequest(env: readonly string[] | null | undefined): CalicoRequest | undefined {
  const ipText = envValue(env, 'CALICO_IP');
  if (ipText === undefined) {
    if (envValue(env, 'CALICO_PROFILE') !== undefined) {
      throw new ValidationError('CALICO_PROFILE is set but CALICO_IP is not: set CALICO_IP to an address in a Calico pool, or to auto', 'CALICO_IP');
    }
    return undefined;
  }
  const t = ipText.trim();
  let ip: CalicoRequest['ip'];
  if (t.toLowerCase() === 'auto') ip = 'auto';
  else {
    const v = ipVersionOf(t);
    if (v === undefined) {
      throw new ValidationError(
        `CALICO_IP=${ipText} is not valid: use an IPv4 or IPv6 address inside a Calico pool (e.g. CALICO_IP=192.168.1.1), or CALICO_IP=auto`,
        'CALICO_IP',
      );
    }
    ip = { address: normaliseIp(t), version: v };
  }
  const profText = envValue(env, 'CALICO_PROFILE');
  const profiles = profText === undefined || profText.trim() === '' ? [] : profText.split(',').map((p) => p.trim());
  for (const p of profiles) {
    try {
      validateProfileName(p, 'CALICO_PROFILE');
    } catch {
      throw new ValidationError(
        `CALICO_PROFILE=${profText} is not valid: profile names must be < 40 characters of letters, numbers, dots, dashes and underscores (several may be separated by commas)`,
        'CALICO_PROFILE',
      );
    }
  }
  if (new Set(profiles).size !== profiles.length) throw new ValidationError(`CALICO_PROFILE=${profText} names a profile twice`, 'CALICO_PROFILE');
  return { ip, profiles };
}
