/**
 * IP set identities. A rule's `tag: X` refers to the set of addresses of every endpoint (on
 * every host) that has a profile carrying tag X (the Powerstrip-era semantics); a rule's
 * selector refers to the set of addresses of every endpoint whose labels (its own, its
 * profiles', and its profiles' tags as empty-valued labels) match. Sets are identified by
 * `tag:<name>` and `sel:<canonical selector>` so that two rules with equivalent selectors
 * share one set.
 */
import { parseSelector, Selector } from '../../src/model/selector.js';
import { parseCidr, formatIp, cidrSize, addrAt } from '../../src/net/ip.js';

export type SetId = string;

export const tagSetId = (tag: string): SetId => `tag:${tag}`;

const canonicalCache = new Map<string, { id: SetId; selector: Selector } | null>();

/** The set id of a selector text, or undefined when it does not parse. */
export function selectorSet(text: string): { id: SetId; selector: Selector } | undefined {
  let hit = canonicalCache.get(text);
  if (hit === undefined) {
    try {
      const selector = parseSelector(text);
      hit = { id: `sel:${selector.canonical()}`, selector };
    } catch {
      hit = null;
    }
    if (canonicalCache.size > 10000) canonicalCache.clear();
    canonicalCache.set(text, hit);
  }
  return hit ?? undefined;
}

/** Largest network expanded into single addresses for a set; wider ones are left out (and logged). */
export const MAX_EXPANDED_NET = 256;

/**
 * The single addresses of a CIDR (sets hold plain addresses: interval sets make nft check
 * overlaps in userspace, which costs ~60 ms per change with 20k members). Returns undefined
 * when the network is wider than MAX_EXPANDED_NET.
 */
export function netAddresses(cidr: string): string[] | undefined {
  const c = parseCidr(cidr);
  const n = cidrSize(c);
  if (n === 1n) return [formatIp({ version: c.version, value: c.network })];
  if (n > BigInt(MAX_EXPANDED_NET)) return undefined;
  const out: string[] = [];
  for (let i = 0n; i < n; i++) out.push(formatIp(addrAt(c, i)));
  return out;
}
