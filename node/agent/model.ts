/**
 * What the agent keeps of each datastore value, parsed and validated once when the key changes.
 * An invalid value is treated as absent (Felix does the same for endpoints) and logged; an
 * invalid rule is kept as a "broken" rule that renders as a drop, so that a rule we cannot
 * understand never opens anything.
 */
import { StoredWorkloadEndpoint, StoredHostEndpoint, StoredProfileRules, StoredPolicy, StoredPool, StoredRule, normaliseStoredEndpoint } from '../../src/model/stored.js';
import { Rule, validateRule, ruleFromStored } from '../../src/model/rules.js';
import { parseSelector, Selector } from '../../src/model/selector.js';
import { parseCidr, formatCidr, parseIp, formatIp, IpVersion } from '../../src/net/ip.js';
import { errorMessage } from '../../src/errors.js';

export type Labels = Readonly<Record<string, string>>;

export type ParsedRule =
  | { readonly ok: true; readonly rule: Rule; readonly logPrefix?: string }
  | { readonly ok: false; readonly error: string };

export interface WorkloadEndpoint {
  readonly key: string;
  readonly node: string;
  readonly endpointId: string;
  readonly iface: string;
  readonly active: boolean;
  readonly mac?: string;
  readonly profileIds: readonly string[];
  /** Normalised CIDRs (host routes are /32 and /128). */
  readonly nets4: readonly string[];
  readonly nets6: readonly string[];
  readonly labels: Labels;
  readonly ipv6Gateway?: string;
}

export interface HostEndpoint {
  readonly key: string;
  readonly node: string;
  readonly profileIds: readonly string[];
  readonly nets4: readonly string[];
  readonly nets6: readonly string[];
  readonly labels: Labels;
}

export interface ProfileRules {
  readonly inbound: readonly ParsedRule[];
  readonly outbound: readonly ParsedRule[];
}

export interface Policy {
  readonly name: string;
  /** Absent order sorts last (Felix). */
  readonly order: number;
  readonly selector: Selector;
  readonly inbound: readonly ParsedRule[];
  readonly outbound: readonly ParsedRule[];
  readonly ingress: boolean;
  readonly egress: boolean;
}

export interface Pool {
  readonly cidr: string;
  readonly version: IpVersion;
  readonly masquerade: boolean;
  readonly ipip: boolean;
  readonly disabled: boolean;
}

const IFACE_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class InvalidValueError extends Error {}

function fail(msg: string): never {
  throw new InvalidValueError(msg);
}

function json(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    return fail(`not JSON: ${errorMessage(err)}`);
  }
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(`${field} must be a list of strings`);
  return v as string[];
}

function labelMap(v: unknown, field: string): Labels {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${field} must be a mapping`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') fail(`${field}.${k} must be a string`);
    out[k] = val;
  }
  return out;
}

function nets(list: unknown, version: IpVersion, field: string): string[] {
  return stringList(list, field).map((n) => {
    let c;
    try {
      c = parseCidr(n);
    } catch {
      return fail(`${field}: '${n}' is not a CIDR`);
    }
    if (c.version !== version) fail(`${field}: '${n}' is not IPv${version}`);
    return formatCidr(c);
  });
}

export function parseRules(list: unknown, field: string): ParsedRule[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) fail(`${field} must be a list`);
  return list.map((raw, i): ParsedRule => {
    try {
      if (!raw || typeof raw !== 'object') return { ok: false, error: `${field}[${i}] is not an object` };
      const stored = raw as StoredRule;
      const rule = validateRule(ruleFromStored(stored), `${field}[${i}]`);
      const logPrefix = typeof stored.log_prefix === 'string' ? stored.log_prefix : undefined;
      return logPrefix !== undefined ? { ok: true, rule, logPrefix } : { ok: true, rule };
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
  });
}

export function parseWorkloadEndpoint(key: string, node: string, endpointId: string, value: string): WorkloadEndpoint {
  const raw = json(value);
  if (!raw || typeof raw !== 'object') fail('endpoint must be an object');
  const ep = normaliseStoredEndpoint(raw as StoredWorkloadEndpoint);
  if (ep.state !== 'active' && ep.state !== 'inactive') fail(`state must be active or inactive, not '${String(ep.state)}'`);
  if (typeof ep.name !== 'string' || !IFACE_RE.test(ep.name)) fail(`name '${String(ep.name)}' is not an interface name`);
  let mac: string | undefined;
  if (ep.mac !== null && ep.mac !== undefined && ep.mac !== '') {
    if (typeof ep.mac !== 'string' || !MAC_RE.test(ep.mac.toLowerCase().replace(/-/g, ':'))) fail(`mac '${String(ep.mac)}' is not a MAC address`);
    mac = ep.mac.toLowerCase().replace(/-/g, ':');
  }
  let ipv6Gateway: string | undefined;
  if (typeof ep.ipv6_gateway === 'string' && ep.ipv6_gateway) {
    try {
      const g = parseIp(ep.ipv6_gateway);
      if (g.version === 6) ipv6Gateway = formatIp(g);
    } catch {
      /* an unusable gateway only means no proxy NDP entry */
    }
  }
  return {
    key,
    node,
    endpointId,
    iface: ep.name,
    active: ep.state === 'active',
    mac,
    profileIds: stringList(ep.profile_ids, 'profile_ids'),
    nets4: nets(ep.ipv4_nets, 4, 'ipv4_nets'),
    nets6: nets(ep.ipv6_nets, 6, 'ipv6_nets'),
    labels: labelMap(ep.labels, 'labels'),
    ipv6Gateway,
  };
}

export function parseHostEndpoint(key: string, node: string, value: string): HostEndpoint {
  const raw = json(value) as StoredHostEndpoint;
  if (!raw || typeof raw !== 'object') fail('host endpoint must be an object');
  const addrs = (list: unknown, v: IpVersion, f: string) =>
    stringList(list, f).map((a) => {
      try {
        const ip = parseIp(a);
        if (ip.version !== v) fail(`${f}: '${a}' is not IPv${v}`);
        return `${formatIp(ip)}/${v === 4 ? 32 : 128}`;
      } catch (err) {
        if (err instanceof InvalidValueError) throw err;
        return fail(`${f}: '${a}' is not an IP address`);
      }
    });
  return {
    key,
    node,
    profileIds: stringList(raw.profile_ids, 'profile_ids'),
    nets4: addrs(raw.expected_ipv4_addrs, 4, 'expected_ipv4_addrs'),
    nets6: addrs(raw.expected_ipv6_addrs, 6, 'expected_ipv6_addrs'),
    labels: labelMap(raw.labels, 'labels'),
  };
}

export function parseProfileRules(value: string): ProfileRules {
  const raw = json(value) as StoredProfileRules;
  if (!raw || typeof raw !== 'object') fail('profile rules must be an object');
  return { inbound: parseRules(raw.inbound_rules, 'inbound_rules'), outbound: parseRules(raw.outbound_rules, 'outbound_rules') };
}

export function parseProfileTags(value: string): string[] {
  return stringList(json(value), 'tags');
}

export function parseProfileLabels(value: string): Labels {
  return labelMap(json(value), 'labels');
}

export function parsePolicy(name: string, value: string): Policy {
  const raw = json(value) as StoredPolicy;
  if (!raw || typeof raw !== 'object') fail('policy must be an object');
  let selector: Selector;
  try {
    selector = parseSelector(typeof raw.selector === 'string' ? raw.selector : '');
  } catch (err) {
    return fail(`selector: ${errorMessage(err)}`);
  }
  const inbound = parseRules(raw.inbound_rules, 'inbound_rules');
  const outbound = parseRules(raw.outbound_rules, 'outbound_rules');
  let ingress: boolean;
  let egress: boolean;
  if (Array.isArray(raw.types) && raw.types.length > 0) {
    ingress = raw.types.includes('ingress');
    egress = raw.types.includes('egress');
  } else {
    // Same inference as calicoctl: ingress, unless there are egress rules and no ingress rules.
    egress = outbound.length > 0;
    ingress = inbound.length > 0 || !egress;
  }
  const order = typeof raw.order === 'number' && Number.isFinite(raw.order) ? raw.order : Number.POSITIVE_INFINITY;
  return { name, order, selector, inbound, outbound, ingress, egress };
}

export function parsePool(value: string, version: IpVersion): Pool {
  const raw = json(value) as StoredPool;
  if (!raw || typeof raw !== 'object' || typeof raw.cidr !== 'string') fail('pool must be an object with a cidr');
  let c;
  try {
    c = parseCidr(raw.cidr);
  } catch {
    return fail(`cidr '${raw.cidr}' is not a CIDR`);
  }
  if (c.version !== version) fail(`cidr '${raw.cidr}' is not IPv${version}`);
  return {
    cidr: formatCidr(c),
    version,
    masquerade: raw.masquerade === true,
    ipip: typeof raw.ipip === 'string' && raw.ipip !== '' && (raw.ipip_mode as string | undefined) !== 'never',
    disabled: raw.disabled === true,
  };
}

/** A node address from bird_ip / ip_addr_v4 ("None", "" or garbage mean none). */
export function parseNodeIp(value: string): string | undefined {
  const t = value.trim().split('/')[0]!;
  try {
    return formatIp(parseIp(t));
  } catch {
    return undefined;
  }
}
