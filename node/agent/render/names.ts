/**
 * Names of everything in table `inet calico`. nft identifiers allow letters, digits and
 * `/ - _ .` (starting with a letter), and may be up to 255 characters; profile, policy and tag
 * names that do not fit are shortened to a readable prefix plus a hash.
 */
import { hash64 } from './hash.js';

export const CHAIN_FORWARD = 'filter-FORWARD';
export const CHAIN_INPUT = 'filter-INPUT';
export const CHAIN_POSTROUTING = 'nat-POSTROUTING';
export const CHAIN_FROM_WL_DISPATCH = 'from-wl-dispatch';
export const CHAIN_TO_WL_DISPATCH = 'to-wl-dispatch';
export const CHAIN_WL_TO_HOST = 'wl-to-host';
export const MAP_FROM_WL = 'from-wl';
export const MAP_TO_WL = 'to-wl';
export const SET_ALL_POOLS = (v: 4 | 6) => `all-pools${v}`;
export const SET_MASQ_POOLS = (v: 4 | 6) => `masq-pools${v}`;
export const SET_ALL_HOSTS4 = 'all-hosts4';

const SAFE_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** A name usable inside an nft identifier: as is when safe, else sanitised + hash. */
export function safeName(name: string): string {
  if (SAFE_RE.test(name)) return name;
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40) + '_' + hash64(name).slice(0, 10);
}

/**
 * Chains of traffic from / to workloads (egress / ingress policy), one per distinct sequence of
 * policies and profiles ("class"): endpoints with the same profiles and policies share them.
 * The name is readable for the common case (profiles only) and a hash otherwise.
 */
export function classChain(dir: 'from' | 'to', policies: readonly string[], profiles: readonly string[]): string {
  const prefix = dir === 'from' ? 'fw' : 'tw';
  // '/' cannot occur in a safeName, so the joined form is unambiguous; hashed names use another
  // prefix (fwc-/twc-) so they can never equal a readable one.
  const readable = profiles.map(safeName).join('/');
  if (!policies.length && profiles.length && readable.length <= 80) return `${prefix}-${readable}`;
  return `${prefix}c-${hash64(JSON.stringify([policies, profiles]))}`;
}
/** Where admin-down and profile-less endpoints go: everything is dropped. */
export const CHAIN_WL_DROP = 'wl-drop';
/** Anti-spoofing sets: (interface . address) and (interface . MAC) pairs of local endpoints. */
export const SET_WL_ADDR = (v: 4 | 6) => `wl-addr${v}`;
export const SET_WL_MAC = 'wl-mac';
/** Interfaces of endpoints without a recorded MAC (no MAC check for them). */
export const SET_WL_NO_MAC = 'wl-nomac';
/** Profile chains: inbound (`pri-`) and outbound (`pro-`). */
export const profileChain = (name: string, dir: 'in' | 'out') => `${dir === 'in' ? 'pri' : 'pro'}-${safeName(name)}`;
/** Policy chains: inbound (`pi-`) and outbound (`po-`). */
export const policyChain = (name: string, dir: 'in' | 'out') => `${dir === 'in' ? 'pi' : 'po'}-${safeName(name)}`;

/** nft set of an IP set id (see sets.ts) for one family. */
export function ipSetName(id: string, v: 4 | 6): string {
  if (id.startsWith('tag:')) return `t${v}-${safeName(id.slice(4))}`;
  return `s${v}-${hash64(id)}`;
}
