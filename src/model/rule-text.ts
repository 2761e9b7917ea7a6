/**
 * The Powerstrip-era rule language of `calicoctl profile <P> rule add|remove (inbound|outbound) <rule>`
 * (calico-docker v0.4.6+), parsed into the stored rule shape and printed back for `rule show`.
 *
 *   (allow|deny) [ (tcp|udp) [from [ports <P>] [tag <T>] [<CIDR> | cidr <CIDR>]] [to ...same...]
 *                | icmp [type <N> [code <N>]] [from [tag <T>] [<CIDR>]] [to [tag <T>] [<CIDR>]]
 *                | [from [tag <T>] [<CIDR>]] [to [tag <T>] [<CIDR>]] ]
 *
 * Both CIDR spellings are accepted: the bare `<CIDR>` of v0.4.x and `cidr <CIDR>` of v0.5.2+.
 * Within a `from`/`to` clause the parts may come in any order (each at most once); the printed
 * form always uses the originals' order. Validation messages start with the originals' sentences
 * (`Invalid CIDR specified.` ...) and then name the offending value.
 */
import { ValidationError } from '../errors.js';
import { normaliseCidr, parseCidr } from '../net/ip.js';
import type { StoredRule } from './stored.js';

export type RuleAction = 'allow' | 'deny';
export type RuleDirection = 'inbound' | 'outbound';

const ACTIONS: readonly string[] = ['allow', 'deny'];
const PORT_PROTOCOLS: readonly string[] = ['tcp', 'udp'];
const PROTOCOLS: readonly string[] = [...PORT_PROTOCOLS, 'icmp'];
/** Grammar words that cannot stand for a bare CIDR inside a clause (so a misplaced one gets a grammar error). */
const MISPLACED_IN_CLAUSE: readonly string[] = [...ACTIONS, ...PROTOCOLS, 'type', 'code'];
const TAG_RE = /^[a-zA-Z0-9_.-]+$/;
const MAX_PORT = 65535;
/** Felix cannot match ICMP type or code 255, so the originals reject it. */
const MAX_ICMP = 254;

export const MSG_INVALID_PORT = 'Invalid port specified.';
export const MSG_INVALID_ICMP = 'Invalid ICMP type or code specified.';
export const MSG_INVALID_CIDR = 'Invalid CIDR specified.';
export const MSG_INVALID_TAG = 'Tags names can only contain numbers, letters, dots, dashes and underscores.';

const GRAMMAR_HINT =
  'a rule looks like: allow|deny [tcp|udp|icmp] [type N [code N]] [from [ports P] [tag T] [CIDR]] [to [ports P] [tag T] [CIDR]]' +
  ', e.g. "allow tcp from tag WEB to ports 80,443" or "deny icmp type 8 from 10.0.0.0/8"';

// ---------------------------------------------------------------------------------------------
// Value validators (exported: the CLI validates the same values outside of rule text).

/**
 * Parses a ports argument: a comma list of ports and ranges (`a-b` or `a:b`). Single ports become
 * numbers, ranges the string `"a:b"`; values 0-65535 and min <= max.
 */
export function parsePorts(text: string, field = 'ports'): Array<number | string> {
  // Name the whole list only when it has more than one entry, so the message stays short.
  const within = text.includes(',') ? ` (in '${text}')` : '';
  const bad = (problem: string, hint?: string): never => {
    throw new ValidationError(`${MSG_INVALID_PORT} ${problem}${within}.`, field, hint);
  };
  const portNumber = (digits: string): number => {
    const n = Number(digits);
    if (n > MAX_PORT) bad(`Port ${digits} is above ${MAX_PORT}`);
    return n;
  };
  const out: Array<number | string> = [];
  for (const part of text.split(',')) {
    const range = /^(\d+)[-:](\d+)$/.exec(part);
    if (/^\d+$/.test(part)) {
      out.push(portNumber(part));
    } else if (range) {
      const lo = portNumber(range[1]!);
      const hi = portNumber(range[2]!);
      if (lo > hi) bad(`The range '${part}' has its minimum above its maximum`);
      out.push(`${lo}:${hi}`);
    } else {
      bad(`${part === '' ? 'An empty entry' : `'${part}'`} is not a port (0-${MAX_PORT}) or a range (a:b or a-b)`,
        'ports are a comma-separated list such as 80,443,8000:8080');
    }
  }
  return out;
}

/** ICMP type or code: an integer 0-254. */
export function parseIcmpValue(text: string, what: 'type' | 'code'): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_ICMP) {
    throw new ValidationError(`${MSG_INVALID_ICMP} ICMP ${what} '${text}' must be an integer from 0 to ${MAX_ICMP}.`, `icmp_${what}`);
  }
  return Number(text);
}

/** A CIDR (or bare address, taken as a host route), normalised: host bits cleared. */
export function parseRuleCidr(text: string, field = 'cidr'): string {
  try {
    return normaliseCidr(text);
  } catch {
    throw new ValidationError(`${MSG_INVALID_CIDR} '${text}' is not a valid CIDR.`, field, 'e.g. 10.0.0.0/8, 192.168.1.5 or fd00::/64');
  }
}

export function validateTag(text: string, field = 'tag'): string {
  if (!TAG_RE.test(text)) throw new ValidationError(`${MSG_INVALID_TAG} '${text}' is not a valid tag.`, field);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Parser.

/** Reads words left to right; grammar errors name the rule text and the word number (1-based). */
class Words {
  private i = 0;
  constructor(private readonly words: readonly string[]) {}
  get text(): string { return this.words.join(' '); }
  peek(): string | undefined { return this.words[this.i]; }
  next(): string | undefined { return this.words[this.i++]; }
  /** The value that must follow a keyword (`tag WEB`, `ports 80`). */
  argument(keyword: string, what: string): string {
    const w = this.next();
    if (w === undefined) this.fail(`"${keyword}" must be followed by ${what}`);
    return w;
  }
  fail(problem: string): never {
    throw new ValidationError(`Invalid rule "${this.text}": ${problem}.`, 'rule', GRAMMAR_HINT);
  }
  unexpected(expected: string): never {
    const w = this.peek();
    if (w === undefined) this.fail(`the rule ends too early, expected ${expected}`);
    this.fail(`unexpected "${w}" at word ${this.i + 1}, expected ${expected}`);
  }
}

/**
 * Parses a rule given as argv words (`['allow', 'tcp', 'to', 'ports', '80']`). A word holding
 * spaces (the whole rule quoted as one argument) is split, so both spellings work.
 */
export function parseRuleWords(words: readonly string[]): StoredRule {
  const w: Words = new Words(words.flatMap((x) => x.split(/\s+/)).filter((x) => x !== ''));
  const action = w.next();
  if (action === undefined) w.fail('a rule starts with allow or deny');
  if (!ACTIONS.includes(action)) w.fail(`unknown action "${action}", a rule starts with allow or deny`);
  const rule: StoredRule = { action: action as RuleAction };

  const protocol = PROTOCOLS.includes(w.peek() ?? '') ? w.next()! : undefined;
  if (protocol !== undefined) rule.protocol = protocol;

  if (w.peek() === 'type' || w.peek() === 'code') {
    if (protocol !== 'icmp') {
      w.fail(`"${w.peek()}" (ICMP type and code) is only valid after the protocol icmp`);
    }
    if (w.peek() === 'code') w.fail('an ICMP code needs a type first: icmp type <TYPE> code <CODE>');
    w.next();
    rule.icmp_type = parseIcmpValue(w.argument('type', 'an ICMP type (0-254)'), 'type');
    if (w.peek() === 'code') {
      w.next();
      rule.icmp_code = parseIcmpValue(w.argument('code', 'an ICMP code (0-254)'), 'code');
    }
  }

  const seen = new Set<string>();
  while (w.peek() !== undefined) {
    const dir = w.peek();
    if (dir !== 'from' && dir !== 'to') {
      const protoHint = protocol === undefined ? 'tcp, udp, icmp, ' : '';
      w.unexpected(`${protoHint}"from", "to" or the end of the rule`);
    }
    if (seen.has(dir)) w.fail(`"${dir}" appears twice`);
    seen.add(dir);
    w.next();
    parseClause(w, rule, dir === 'from' ? 'src' : 'dst', protocol);
  }
  checkFamilies(w, rule);
  return rule;
}

/** One `from`/`to` clause: ports, tag and a CIDR, each optional and at most once. */
function parseClause(w: Words, rule: StoredRule, side: 'src' | 'dst', protocol: string | undefined): void {
  const done = new Set<string>();
  const once = (part: string): void => {
    if (done.has(part)) w.fail(`the ${side === 'src' ? 'from' : 'to'} clause has more than one ${part}`);
    done.add(part);
  };
  for (;;) {
    const word = w.peek();
    if (word === undefined || word === 'from' || word === 'to') return;
    if (MISPLACED_IN_CLAUSE.includes(word)) {
      w.unexpected(`ports, tag, cidr, a CIDR${side === 'src' ? ', "to"' : ''} or the end of the rule` +
        (word === 'type' || word === 'code' ? ' (ICMP type and code go right after icmp, before from/to)' : ''));
    }
    w.next();
    if (word === 'ports') {
      once('ports list');
      if (protocol === undefined || !PORT_PROTOCOLS.includes(protocol)) {
        throw new ValidationError(
          protocol === undefined ? 'Ports are not valid without a protocol' : `Ports are not valid with protocol ${protocol}`,
          `${side}_ports`, 'ports need protocol tcp or udp, e.g. "allow tcp to ports 80"');
      }
      rule[`${side}_ports`] = parsePorts(w.argument('ports', 'a port list such as 80,443 or 8000:8080'), `${side}_ports`);
    } else if (word === 'tag') {
      once('tag');
      rule[`${side}_tag`] = validateTag(w.argument('tag', 'a tag name'), `${side}_tag`);
    } else if (word === 'cidr') {
      once('CIDR');
      rule[`${side}_net`] = parseRuleCidr(w.argument('cidr', 'a CIDR such as 10.0.0.0/8'), `${side}_net`);
    } else {
      // Any other word is the v0.4 bare <CIDR>.
      once('CIDR');
      rule[`${side}_net`] = parseRuleCidr(word, `${side}_net`);
    }
  }
}

/** A rule whose source and destination nets are of different IP versions could never match. */
function checkFamilies(w: Words, rule: StoredRule): void {
  if (rule.src_net === undefined || rule.dst_net === undefined) return;
  const s = parseCidr(rule.src_net).version;
  const d = parseCidr(rule.dst_net).version;
  if (s !== d) {
    w.fail(`the source ${rule.src_net} is IPv${s} but the destination ${rule.dst_net} is IPv${d}, so the rule could never match`);
  }
}

// ---------------------------------------------------------------------------------------------
// Printer.

/** Selector text inside a rule line: double quotes unless the selector itself holds one. */
function quoted(text: string): string {
  return text.includes('"') ? `'${text}'` : `"${text}"`;
}

function entityParts(rule: StoredRule, side: 'src' | 'dst'): string[] {
  const out: string[] = [];
  const get = <K extends keyof StoredRule>(k: K): StoredRule[K] => rule[k];
  const ports = get(`${side}_ports`);
  const notPorts = get(`!${side}_ports`);
  const tag = get(`${side}_tag`);
  const notTag = get(`!${side}_tag`);
  const sel = get(`${side}_selector`);
  const notSel = get(`!${side}_selector`);
  const net = get(`${side}_net`);
  const nets = get(`${side}_nets`);
  const notNet = get(`!${side}_net`);
  const notNets = get(`!${side}_nets`);
  // v0.4 order first (ports, tag, CIDR), each v1-only negation right after its positive form.
  if (ports !== undefined) out.push('ports', ports.join(','));
  if (notPorts !== undefined) out.push('not', 'ports', notPorts.join(','));
  if (tag !== undefined) out.push('tag', tag);
  if (notTag !== undefined) out.push('not', 'tag', notTag);
  if (sel !== undefined) out.push('selector', quoted(sel));
  if (notSel !== undefined) out.push('not', 'selector', quoted(notSel));
  // The v0.4.8 `rule show` printed the bare CIDR (no `cidr` keyword); kept for compatibility,
  // and parseRuleWords reads it back.
  if (net !== undefined) out.push(net);
  if (nets !== undefined) out.push('nets', nets.join(','));
  if (notNet !== undefined) out.push('not', notNet);
  if (notNets !== undefined) out.push('not', 'nets', notNets.join(','));
  return out;
}

/**
 * The rule text shown by `rule show`: action, protocol, `type N`, `code N`, `from` + ports, tag,
 * CIDR, `to` + the same. For the v0.4 subset the text parses back to an equal rule. Fields only the
 * v1 model has are shown readably but are not part of the rule grammar: `ipv4`/`ipv6` (ip_version)
 * after the action, `not <proto>`, `not type N`, `not code N`, and in a clause `not ports ...`,
 * `not tag T`, `selector "..."`, `not selector "..."`, `nets a,b`, `not <CIDR>`, `not nets a,b`;
 * a log prefix is shown as `prefix "..."` after the action.
 */
export function formatRule(rule: StoredRule): string {
  const out: string[] = [rule.action ?? 'allow'];
  if (rule.log_prefix !== undefined) out.push('prefix', quoted(rule.log_prefix));
  if (rule.ip_version !== undefined) out.push(`ipv${rule.ip_version}`);
  if (rule.protocol !== undefined) out.push(String(rule.protocol));
  if (rule['!protocol'] !== undefined) out.push('not', String(rule['!protocol']));
  if (rule.icmp_type !== undefined) out.push('type', String(rule.icmp_type));
  if (rule.icmp_code !== undefined) out.push('code', String(rule.icmp_code));
  if (rule['!icmp_type'] !== undefined) out.push('not', 'type', String(rule['!icmp_type']));
  if (rule['!icmp_code'] !== undefined) out.push('not', 'code', String(rule['!icmp_code']));
  const from = entityParts(rule, 'src');
  if (from.length > 0) out.push('from', ...from);
  const to = entityParts(rule, 'dst');
  if (to.length > 0) out.push('to', ...to);
  return out.join(' ');
}

/**
 * The `rule show` block for one direction: `Inbound rules:` then one line per rule, a 1-based
 * index right-aligned in 3 characters after a leading space (Python's ` %3d %s`). Lines are joined
 * with "\n" and there is no trailing newline.
 */
export function formatRuleList(title: 'Inbound' | 'Outbound', rules: readonly StoredRule[]): string {
  const lines = [`${title} rules:`];
  rules.forEach((r, i) => lines.push(` ${String(i + 1).padStart(3)} ${formatRule(r)}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Equality, for `rule add` (skip duplicates) and `rule remove <rule>`.

/**
 * Exact match of two stored rules: the same keys with the same values, in any key order. The one
 * allowance is the action: an absent action means allow (as in Felix), so a rule stored without
 * one (e.g. via `rule update`) can still be removed by `rule remove inbound allow ...`.
 * Keys whose value is `undefined` count as absent. Lists compare in order.
 */
export function rulesEqual(a: StoredRule, b: StoredRule): boolean {
  return deepEqual(withDefaults(a), withDefaults(b));
}

function withDefaults(r: StoredRule): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v;
  out.action ??= 'allow';
  return out;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(rb, k) && deepEqual(ra[k], rb[k]));
}
