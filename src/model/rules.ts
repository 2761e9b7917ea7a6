/**
 * Rules: the v1 resource form (`action`, `protocol`, `icmp`, `source`, `destination`, ...) and the
 * stored form (snake_case with `src_`/`dst_` prefixes and `!` negations), converted both ways, and
 * validated. Ports, ICMP, CIDRs, tags and selectors are checked here for every entry point
 * (resource files, the Powerstrip rule grammar and `rule update` JSON).
 */
import { ValidationError } from '../errors.js';
import { normaliseCidr, parseCidr } from '../net/ip.js';
import { StoredRule } from './stored.js';
import { validateSelector } from './selector.js';

/** Checks a selector's syntax and returns the text as written (trimmed). */
export function validateSelectorText(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new ValidationError(`${field}: a selector must be a string`, field);
  validateSelector(v, field);
  return v.trim();
}

export interface EntityRule {
  tag?: string;
  notTag?: string;
  net?: string;
  notNet?: string;
  nets?: string[];
  notNets?: string[];
  selector?: string;
  notSelector?: string;
  ports?: Array<number | string>;
  notPorts?: Array<number | string>;
}

export interface Rule {
  action: 'allow' | 'deny' | 'log' | 'pass';
  ipVersion?: 4 | 6;
  protocol?: string | number;
  notProtocol?: string | number;
  icmp?: { type?: number; code?: number };
  notICMP?: { type?: number; code?: number };
  source?: EntityRule;
  destination?: EntityRule;
}

export const TAG_RE = /^[a-zA-Z0-9_.-]+$/;
const PROTOCOL_NAMES = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'udplite'];
const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp', 'udplite', '6', '17', '132', '136'];

export function validateTag(tag: unknown, field: string): string {
  if (typeof tag !== 'string' || !TAG_RE.test(tag)) {
    throw new ValidationError(
      `${field}: '${String(tag)}' is not a valid tag: tag names can only contain numbers, letters, dots, dashes and underscores`,
      field,
    );
  }
  return tag;
}

export function validateProtocol(p: unknown, field: string): string | number {
  if (typeof p === 'number' || (typeof p === 'string' && /^\d+$/.test(p))) {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 255) throw new ValidationError(`${field}: protocol number ${p} is out of range (1-255)`, field);
    return n;
  }
  if (typeof p === 'string' && PROTOCOL_NAMES.includes(p.toLowerCase())) return p.toLowerCase();
  throw new ValidationError(`${field}: '${String(p)}' is not a valid protocol (use ${PROTOCOL_NAMES.join(', ')} or 1-255)`, field);
}

/** A port: an integer 0-65535, or a range "lo:hi" (also accepted as "lo-hi"), normalised. */
export function normalisePort(p: unknown, field: string): number | string {
  const bad = () => new ValidationError(`${field}: '${String(p)}' is not a valid port or port range (0-65535, e.g. 80 or "8000:8080")`, field);
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw bad();
    return p;
  }
  if (typeof p !== 'string') throw bad();
  const m = /^(\d+)(?:\s*[:-]\s*(\d+))?$/.exec(p.trim());
  if (!m) throw bad();
  const lo = Number(m[1]);
  if (lo > 65535) throw bad();
  if (m[2] === undefined) return lo;
  const hi = Number(m[2]);
  if (hi > 65535 || lo > hi) throw bad();
  return lo === hi ? lo : `${lo}:${hi}`;
}

export function validateIcmpValue(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 254) {
    throw new ValidationError(`${field}: '${String(v)}' is not a valid ICMP type or code (0-254)`, field);
  }
  return v;
}

function validateNet(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new ValidationError(`${field}: '${String(v)}' is not a valid CIDR`, field);
  try {
    return normaliseCidr(v);
  } catch {
    throw new ValidationError(`${field}: '${v}' is not a valid CIDR`, field);
  }
}

function checkPortsAllowed(protocol: string | number | undefined, field: string): void {
  if (protocol === undefined || !PORT_PROTOCOLS.includes(String(protocol))) {
    throw new ValidationError(`${field}: ports are only valid with protocol tcp or udp${protocol !== undefined ? ` (not ${protocol})` : ' (set protocol)'}`, field);
  }
}

function validateEntity(e: EntityRule | undefined, protocol: string | number | undefined, field: string): EntityRule | undefined {
  if (e === undefined || e === null) return undefined;
  if (typeof e !== 'object') throw new ValidationError(`${field}: must be a mapping`, field);
  const out: EntityRule = {};
  const known = ['tag', 'notTag', 'net', 'notNet', 'nets', 'notNets', 'selector', 'notSelector', 'ports', 'notPorts'];
  for (const k of Object.keys(e)) if (!known.includes(k)) throw new ValidationError(`${field}.${k}: unknown field`, `${field}.${k}`);
  if (e.tag !== undefined) out.tag = validateTag(e.tag, `${field}.tag`);
  if (e.notTag !== undefined) out.notTag = validateTag(e.notTag, `${field}.notTag`);
  if (e.net !== undefined) out.net = validateNet(e.net, `${field}.net`);
  if (e.notNet !== undefined) out.notNet = validateNet(e.notNet, `${field}.notNet`);
  if (e.nets !== undefined) out.nets = asArray(e.nets, `${field}.nets`).map((n, i) => validateNet(n, `${field}.nets[${i}]`));
  if (e.notNets !== undefined) out.notNets = asArray(e.notNets, `${field}.notNets`).map((n, i) => validateNet(n, `${field}.notNets[${i}]`));
  if (e.selector !== undefined) out.selector = validateSelectorText(e.selector, `${field}.selector`);
  if (e.notSelector !== undefined) out.notSelector = validateSelectorText(e.notSelector, `${field}.notSelector`);
  if (e.ports !== undefined) {
    checkPortsAllowed(protocol, `${field}.ports`);
    out.ports = asArray(e.ports, `${field}.ports`).map((p, i) => normalisePort(p, `${field}.ports[${i}]`));
  }
  if (e.notPorts !== undefined) {
    checkPortsAllowed(protocol, `${field}.notPorts`);
    out.notPorts = asArray(e.notPorts, `${field}.notPorts`).map((p, i) => normalisePort(p, `${field}.notPorts[${i}]`));
  }
  return Object.keys(out).length ? out : undefined;
}

function asArray(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new ValidationError(`${field}: must be a list`, field);
  return v;
}

/** Validates and normalises a v1 rule. `allowed` lists the actions this context accepts. */
export function validateRule(r: unknown, field: string, allowed: Rule['action'][] = ['allow', 'deny', 'log', 'pass']): Rule {
  if (!r || typeof r !== 'object') throw new ValidationError(`${field}: a rule must be a mapping`, field);
  const rule = r as Rule & Record<string, unknown>;
  const known = ['action', 'ipVersion', 'protocol', 'notProtocol', 'icmp', 'notICMP', 'source', 'destination'];
  for (const k of Object.keys(rule)) if (!known.includes(k)) throw new ValidationError(`${field}.${k}: unknown field`, `${field}.${k}`);
  const action = String(rule.action ?? '').toLowerCase() as Rule['action'];
  if (!allowed.includes(action)) {
    throw new ValidationError(`${field}.action: '${String(rule.action ?? '')}' is not valid here (use ${allowed.join(', ')})`, `${field}.action`);
  }
  const out: Rule = { action };
  if (rule.ipVersion !== undefined) {
    if (rule.ipVersion !== 4 && rule.ipVersion !== 6) throw new ValidationError(`${field}.ipVersion: '${String(rule.ipVersion)}' must be 4 or 6`, `${field}.ipVersion`);
    out.ipVersion = rule.ipVersion;
  }
  if (rule.protocol !== undefined) out.protocol = validateProtocol(rule.protocol, `${field}.protocol`);
  if (rule.notProtocol !== undefined) out.notProtocol = validateProtocol(rule.notProtocol, `${field}.notProtocol`);
  for (const key of ['icmp', 'notICMP'] as const) {
    const ic = rule[key];
    if (ic === undefined) continue;
    if (!['icmp', 'icmpv6', '1', '58'].includes(String(out.protocol ?? ''))) {
      throw new ValidationError(`${field}.${key}: ICMP fields need protocol icmp or icmpv6`, `${field}.${key}`);
    }
    const o: { type?: number; code?: number } = {};
    if (ic.type !== undefined) o.type = validateIcmpValue(ic.type, `${field}.${key}.type`);
    if (ic.code !== undefined) {
      if (ic.type === undefined) throw new ValidationError(`${field}.${key}.code: an ICMP code needs an ICMP type`, `${field}.${key}.code`);
      o.code = validateIcmpValue(ic.code, `${field}.${key}.code`);
    }
    out[key] = o;
  }
  const src = validateEntity(rule.source, out.protocol, `${field}.source`);
  const dst = validateEntity(rule.destination, out.protocol, `${field}.destination`);
  if (src) out.source = src;
  if (dst) out.destination = dst;
  return out;
}

/** v1 rule -> stored JSON. */
export function ruleToStored(r: Rule): StoredRule {
  const s: StoredRule = { action: r.action };
  if (r.ipVersion !== undefined) s.ip_version = r.ipVersion;
  if (r.protocol !== undefined) s.protocol = r.protocol;
  if (r.notProtocol !== undefined) s['!protocol'] = r.notProtocol;
  if (r.icmp?.type !== undefined) s.icmp_type = r.icmp.type;
  if (r.icmp?.code !== undefined) s.icmp_code = r.icmp.code;
  if (r.notICMP?.type !== undefined) s['!icmp_type'] = r.notICMP.type;
  if (r.notICMP?.code !== undefined) s['!icmp_code'] = r.notICMP.code;
  const put = (dir: 'src' | 'dst', e: EntityRule | undefined) => {
    if (!e) return;
    const rec = s as Record<string, unknown>;
    if (e.tag !== undefined) rec[`${dir}_tag`] = e.tag;
    if (e.net !== undefined) rec[`${dir}_net`] = e.net;
    if (e.nets !== undefined) rec[`${dir}_nets`] = e.nets;
    if (e.selector !== undefined) rec[`${dir}_selector`] = e.selector;
    if (e.ports !== undefined) rec[`${dir}_ports`] = e.ports;
    if (e.notTag !== undefined) rec[`!${dir}_tag`] = e.notTag;
    if (e.notNet !== undefined) rec[`!${dir}_net`] = e.notNet;
    if (e.notNets !== undefined) rec[`!${dir}_nets`] = e.notNets;
    if (e.notSelector !== undefined) rec[`!${dir}_selector`] = e.notSelector;
    if (e.notPorts !== undefined) rec[`!${dir}_ports`] = e.notPorts;
  };
  put('src', r.source);
  put('dst', r.destination);
  return s;
}

/** Stored JSON -> v1 rule. A missing action means allow (the Powerstrip-era default). */
export function ruleFromStored(s: StoredRule): Rule {
  const r: Rule = { action: (s.action === 'next-tier' ? 'pass' : s.action) ?? 'allow' };
  if (s.ip_version !== undefined) r.ipVersion = s.ip_version;
  if (s.protocol !== undefined) r.protocol = s.protocol;
  if (s['!protocol'] !== undefined) r.notProtocol = s['!protocol'];
  if (s.icmp_type !== undefined) r.icmp = { type: s.icmp_type, ...(s.icmp_code !== undefined ? { code: s.icmp_code } : {}) };
  if (s['!icmp_type'] !== undefined) r.notICMP = { type: s['!icmp_type'], ...(s['!icmp_code'] !== undefined ? { code: s['!icmp_code'] } : {}) };
  const get = (dir: 'src' | 'dst'): EntityRule | undefined => {
    const rec = s as Record<string, unknown>;
    const e: EntityRule = {};
    const map: Array<[keyof EntityRule, string]> = [
      ['tag', `${dir}_tag`], ['net', `${dir}_net`], ['nets', `${dir}_nets`], ['selector', `${dir}_selector`], ['ports', `${dir}_ports`],
      ['notTag', `!${dir}_tag`], ['notNet', `!${dir}_net`], ['notNets', `!${dir}_nets`], ['notSelector', `!${dir}_selector`], ['notPorts', `!${dir}_ports`],
    ];
    for (const [k, sk] of map) if (rec[sk] !== undefined) (e as Record<string, unknown>)[k] = rec[sk];
    return Object.keys(e).length ? e : undefined;
  };
  const src = get('src');
  const dst = get('dst');
  if (src) r.source = src;
  if (dst) r.destination = dst;
  return r;
}

/** Validates a stored rule (from `rule update` JSON or a Powerstrip-era writer) by round-tripping it. */
export function validateStoredRule(s: unknown, field: string): StoredRule {
  if (!s || typeof s !== 'object') throw new ValidationError(`${field}: a rule must be a JSON object`, field);
  const known = new Set([
    'action', 'ip_version', 'protocol', '!protocol', 'icmp_type', 'icmp_code', '!icmp_type', '!icmp_code', 'log_prefix',
    ...['src', 'dst'].flatMap((d) => ['tag', 'net', 'nets', 'selector', 'ports'].flatMap((f) => [`${d}_${f}`, `!${d}_${f}`])),
  ]);
  for (const k of Object.keys(s)) if (!known.has(k)) throw new ValidationError(`${field}: unknown rule key '${k}'`, `${field}.${k}`);
  const st = s as StoredRule;
  if (st.action !== undefined && !['allow', 'deny', 'log', 'pass', 'next-tier'].includes(st.action)) {
    throw new ValidationError(`${field}.action: '${String(st.action)}' must be allow or deny`, `${field}.action`);
  }
  const v1 = validateRule(ruleFromStored(st), field);
  const back = ruleToStored(v1);
  if (st.action === undefined) delete back.action;
  return back;
}

export { parseCidr };
