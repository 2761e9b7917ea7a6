/**
 * One stored rule -> nft rule bodies (without `add rule <table> <chain>` and without comment).
 *
 * Semantics (Felix's, see the reference notes):
 *  - allow sets the accept mark and returns to the endpoint chain, which then returns too (so a
 *    workload-to-workload packet still meets the receiver's ingress policy);
 *  - deny drops at once; log logs and carries on;
 *  - pass (next-tier) in a policy sets the pass mark and returns: the remaining policies are
 *    skipped and the profiles decide. In a profile it just ends that profile.
 *  - A rule with several nets is one rule with an anonymous set; tag and selector matches are
 *    named sets; a rule whose addresses are of one family only is rendered for that family only,
 *    and a rule with family-specific matches is rendered once per family.
 *  - A rule we cannot translate becomes a drop (fail closed), never an allow or nothing.
 */
import { ParsedRule } from '../model.js';
import { EntityRule, Rule } from '../../../src/model/rules.js';
import { parseCidr, cidrCovers } from '../../../src/net/ip.js';
import { selectorSet, tagSetId } from '../sets.js';
import { ipSetName } from './names.js';

export const MARK_ACCEPT = 0x00010000;
export const MARK_PASS = 0x00020000;
export const hex = (n: number) => '0x' + (n >>> 0).toString(16).padStart(8, '0');
/** Clears our two mark bits, keeping everybody else's. */
export const CLEAR_MARKS = `meta mark set meta mark & ${hex(~(MARK_ACCEPT | MARK_PASS))}`;
export const SET_ACCEPT = `meta mark set meta mark | ${hex(MARK_ACCEPT)}`;
export const SET_PASS = `meta mark set meta mark | ${hex(MARK_PASS)}`;
export const IF_ACCEPTED = `meta mark & ${hex(MARK_ACCEPT)} != 0`;
export const IF_NOT_PASSED = `meta mark & ${hex(MARK_PASS)} == 0`;

export type RuleOwner = 'profile' | 'policy';

const PROTO_NUMBERS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132, udplite: 136 };

function protoNumber(p: string | number | undefined): number | undefined {
  if (p === undefined) return undefined;
  if (typeof p === 'number') return p;
  if (/^\d+$/.test(p)) return Number(p);
  return PROTO_NUMBERS[p.toLowerCase()];
}

function sanitiseLogPrefix(p: string | undefined): string {
  const t = (p ?? 'calico-packet').replace(/[^A-Za-z0-9 _:.-]/g, '').slice(0, 60);
  return t || 'calico-packet';
}

function actionText(r: Rule, owner: RuleOwner, logPrefix: string | undefined): string {
  switch (r.action) {
    case 'allow': return `${SET_ACCEPT} return`;
    case 'deny': return 'drop';
    case 'log': return `log prefix "${sanitiseLogPrefix(logPrefix)}: "`;
    case 'pass': return owner === 'policy' ? `${SET_PASS} return` : 'return';
  }
}

/** Drops nets covered by other nets (anonymous sets reject overlapping intervals). */
function minimalNets(nets: string[]): string[] {
  const cs = [...new Set(nets)].map((n) => ({ text: n, c: parseCidr(n) }));
  return cs.filter((a, i) => !cs.some((b, j) => j !== i && cidrCovers(b.c, a.c) && !(cidrCovers(a.c, b.c) && j > i))).map((x) => x.text);
}

const famOf = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);

/**
 * A value list as nft syntax: a lone value stays a plain match, several become an anonymous set.
 * (Every anonymous set is a kernel object that nft reloads into its cache on each transaction,
 * so the common single-value case must not create one.)
 */
export function valueList(items: string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

/** A CIDR as nft prints it: host routes as bare addresses. */
export const cidrText = (c: string): string => c.replace(/\/(32|128)$/, '');

/**
 * Port alternatives: single ports in one (non-interval) group, each range on its own. A range
 * inside an anonymous set would make it an interval set, and nft re-reads the elements of every
 * interval set in the table before each element change; a plain range match costs nothing.
 */
function portGroups(ports: Array<number | string>): string[] {
  const singles = ports.filter((p) => !String(p).includes(':')).map(String);
  const ranges = ports.filter((p) => String(p).includes(':')).map((p) => String(p).replace(':', '-'));
  return [...(singles.length ? [valueList(singles)] : []), ...ranges];
}

function entityMatches(e: EntityRule | undefined, side: 's' | 'd', fam: 4 | 6): string[] {
  if (!e) return [];
  const ipk = fam === 4 ? 'ip' : 'ip6';
  const field = `${ipk} ${side}addr`;
  const out: string[] = [];
  const pos = [...(e.net ? [e.net] : []), ...(e.nets ?? [])].filter((n) => famOf(n) === fam);
  if (pos.length) out.push(`${field} ${valueList(minimalNets(pos).map(cidrText))}`);
  const neg = [...(e.notNet ? [e.notNet] : []), ...(e.notNets ?? [])].filter((n) => famOf(n) === fam);
  if (neg.length) out.push(`${field} != ${valueList(minimalNets(neg).map(cidrText))}`);
  if (e.tag !== undefined) out.push(`${field} @${ipSetName(tagSetId(e.tag), fam)}`);
  if (e.notTag !== undefined) out.push(`${field} != @${ipSetName(tagSetId(e.notTag), fam)}`);
  if (e.selector !== undefined) out.push(`${field} @${ipSetName(selectorSet(e.selector)!.id, fam)}`);
  if (e.notSelector !== undefined) out.push(`${field} != @${ipSetName(selectorSet(e.notSelector)!.id, fam)}`);
  return out;
}

function hasAddressMatch(e: EntityRule | undefined): boolean {
  return !!e && (e.net !== undefined || e.nets !== undefined || e.notNet !== undefined || e.notNets !== undefined ||
    e.tag !== undefined || e.notTag !== undefined || e.selector !== undefined || e.notSelector !== undefined);
}

/** Families a positive net list allows (undefined = no constraint). */
function netFamilies(e: EntityRule | undefined): Set<4 | 6> | undefined {
  const pos = [...(e?.net ? [e.net] : []), ...(e?.nets ?? [])];
  if (!pos.length) return undefined;
  return new Set(pos.map(famOf));
}

/** Renders one rule. An empty list means "cannot match anything" (e.g. src v4 only, dst v6 only). */
export function renderRule(pr: ParsedRule, owner: RuleOwner): string[] {
  if (!pr.ok) return ['drop'];
  const r = pr.rule;
  for (const e of [r.source, r.destination]) {
    for (const s of [e?.selector, e?.notSelector]) if (s !== undefined && !selectorSet(s)) return ['drop'];
  }
  const proto = protoNumber(r.protocol);
  const notProto = protoNumber(r.notProtocol);
  if ((r.protocol !== undefined && proto === undefined) || (r.notProtocol !== undefined && notProto === undefined)) return ['drop'];
  const action = actionText(r, owner, pr.logPrefix);

  let fams = new Set<4 | 6>(r.ipVersion ? [r.ipVersion] : [4, 6]);
  const restrict = (allowed: Set<4 | 6> | undefined) => {
    if (allowed) fams = new Set([...fams].filter((f) => allowed.has(f)));
  };
  if (proto === 1) restrict(new Set([4]));
  if (proto === 58) restrict(new Set([6]));
  restrict(netFamilies(r.source));
  restrict(netFamilies(r.destination));
  const familySpecific = r.ipVersion !== undefined || proto === 1 || proto === 58 || r.icmp !== undefined || r.notICMP !== undefined ||
    hasAddressMatch(r.source) || hasAddressMatch(r.destination);

  const common = (): string[] => {
    const parts: string[] = [];
    if (proto !== undefined) parts.push(`meta l4proto ${proto}`);
    if (notProto !== undefined) parts.push(`meta l4proto != ${notProto}`);
    return parts;
  };
  // Positive port lists are alternatives (one rule per group, cross product of source and
  // destination groups, as Felix does for multiport chunks); negated ones must all hold.
  const portVariants = (): string[][] => {
    const src = r.source?.ports?.length ? portGroups(r.source.ports).map((g) => [`th sport ${g}`]) : [[]];
    const dst = r.destination?.ports?.length ? portGroups(r.destination.ports).map((g) => [`th dport ${g}`]) : [[]];
    const neg: string[] = [
      ...(r.source?.notPorts?.length ? portGroups(r.source.notPorts).map((g) => `th sport != ${g}`) : []),
      ...(r.destination?.notPorts?.length ? portGroups(r.destination.notPorts).map((g) => `th dport != ${g}`) : []),
    ];
    return src.flatMap((s) => dst.map((d) => [...s, ...d, ...neg]));
  };
  const icmp = (fam: 4 | 6): string[] | undefined => {
    const kw = fam === 4 ? 'icmp' : 'icmpv6';
    if ((r.icmp || r.notICMP) && proto !== (fam === 4 ? 1 : 58)) return undefined;
    const parts: string[] = [];
    if (r.icmp?.type !== undefined) parts.push(`${kw} type ${r.icmp.type}`);
    if (r.icmp?.code !== undefined) parts.push(`${kw} code ${r.icmp.code}`);
    if (r.notICMP?.type !== undefined) {
      if (r.notICMP.code !== undefined) parts.push(`${kw} type . ${kw} code != { ${r.notICMP.type} . ${r.notICMP.code} }`);
      else parts.push(`${kw} type != ${r.notICMP.type}`);
    }
    return parts;
  };

  if (!familySpecific) return portVariants().map((ports) => [...common(), ...ports, action].join(' '));
  const out: string[] = [];
  for (const fam of [4, 6] as const) {
    if (!fams.has(fam)) continue;
    const ic = icmp(fam);
    if (!ic) continue;
    for (const ports of portVariants()) {
      const parts = [
        `meta nfproto ${fam === 4 ? 'ipv4' : 'ipv6'}`,
        ...common(),
        ...entityMatches(r.source, 's', fam),
        ...entityMatches(r.destination, 'd', fam),
        ...ports,
        ...ic,
        action,
      ];
      out.push(parts.join(' '));
    }
  }
  return out;
}

export function renderRules(rules: readonly ParsedRule[], owner: RuleOwner): string[] {
  return rules.flatMap((r) => renderRule(r, owner));
}
