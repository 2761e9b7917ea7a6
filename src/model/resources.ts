/**
 * The calicoctl v1 resource documents (apiVersion: v1, as calicoctl v1.6) and their validation.
 * Documents in projectcalico.org/v3 are converted to these on input (see v3.ts), so one model
 * serves both; the store (src/datastore/resources.ts) maps them onto the stored JSON.
 */
import { ValidationError } from '../errors.js';
import { Kind, resolveKind } from './kinds.js';
import { Rule, validateRule, validateSelectorText } from './rules.js';
import { normaliseCidr, normaliseIp, parseCidr, ipVersionOf, cidrsOverlap } from '../net/ip.js';

export const NAME_RE = /^[a-zA-Z0-9_.-]{1,40}$/;
const GENERIC_NAME_RE = /^[a-zA-Z0-9_.:@-]{1,253}$/;
const LABEL_KEY_RE = /^([a-zA-Z0-9][-a-zA-Z0-9.]*\/)?[a-zA-Z0-9_.-]{1,63}$/;

export interface ProfileResource {
  apiVersion: 'v1'; kind: 'profile';
  metadata: { name: string; labels?: Record<string, string>; tags?: string[] };
  spec: { ingress?: Rule[]; egress?: Rule[] };
}
export interface PolicyResource {
  apiVersion: 'v1'; kind: 'policy';
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { order?: number; selector?: string; types?: Array<'ingress' | 'egress'>; ingress?: Rule[]; egress?: Rule[]; doNotTrack?: boolean; preDNAT?: boolean };
}
export interface WorkloadEndpointResource {
  apiVersion: 'v1'; kind: 'workloadEndpoint';
  metadata: { name: string; workload: string; orchestrator: string; node: string; labels?: Record<string, string>; activeInstanceID?: string };
  spec: { ipNetworks?: string[]; ipNATs?: Array<{ internalIP: string; externalIP: string }>; ipv4Gateway?: string; ipv6Gateway?: string; profiles?: string[]; interfaceName: string; mac?: string };
}
export interface HostEndpointResource {
  apiVersion: 'v1'; kind: 'hostEndpoint';
  metadata: { name: string; node: string; labels?: Record<string, string> };
  spec: { interfaceName?: string; expectedIPs?: string[]; profiles?: string[] };
}
export interface IpPoolResource {
  apiVersion: 'v1'; kind: 'ipPool';
  metadata: { cidr: string };
  spec: { ipip?: { enabled?: boolean; mode?: 'always' | 'cross-subnet' }; 'nat-outgoing'?: boolean; disabled?: boolean; blockSize?: number };
}
export interface BgpPeerResource {
  apiVersion: 'v1'; kind: 'bgpPeer';
  /** `name` is set only for selector-based peers (from v3 documents). */
  metadata: { scope: 'global' | 'node'; node?: string; peerIP?: string; name?: string };
  spec: { asNumber?: number | string; nodeSelector?: string; peerSelector?: string };
}
export interface NodeResource {
  apiVersion: 'v1'; kind: 'node';
  metadata: { name: string; labels?: Record<string, string> };
  spec: { bgp?: { asNumber?: number | string; ipv4Address?: string; ipv6Address?: string; routeReflectorClusterID?: string } };
}
export interface BgpConfigurationResource {
  apiVersion: 'v1'; kind: 'bgpConfiguration';
  metadata: { name: string };
  spec: { asNumber?: number | string; nodeToNodeMeshEnabled?: boolean; logSeverityScreen?: string };
}

export type Resource =
  | ProfileResource | PolicyResource | WorkloadEndpointResource | HostEndpointResource
  | IpPoolResource | BgpPeerResource | NodeResource | BgpConfigurationResource;

// ---------------------------------------------------------------- field validators

export function validateName(v: unknown, field: string, re = GENERIC_NAME_RE): string {
  if (typeof v !== 'string' || !re.test(v)) {
    const what = re === NAME_RE
      ? 'names must be 1-40 characters long and can only contain numbers, letters, dots, dashes and underscores'
      : 'names can only contain numbers, letters, dots, dashes, colons and underscores';
    throw new ValidationError(`${field}: '${String(v ?? '')}' is not a valid name: ${what}`, field);
  }
  return v;
}

export function validateProfileName(v: unknown, field = 'name'): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    throw new ValidationError(
      `${field}: '${String(v ?? '')}' is not a valid profile name: profile names must be < 40 character long and can only contain numbers, letters, dots, dashes and underscores`,
      field,
    );
  }
  return v;
}

/** AS numbers: 0-4294967295, as an integer or asdot "a.b". Returns the integer. */
export function parseAsNumber(v: unknown, field: string): number {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d+$/.test(v.trim())) n = Number(v.trim());
  else if (typeof v === 'string' && /^\d+\.\d+$/.test(v.trim())) {
    const [hi, lo] = v.trim().split('.').map(Number) as [number, number];
    if (hi <= 65535 && lo <= 65535) n = hi * 65536 + lo;
  }
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 4294967295) {
    throw new ValidationError(`${field}: '${String(v)}' is not a valid AS number (0-4294967295, or asdot like 1.10)`, field);
  }
  return n;
}

export function validateIp(v: unknown, field: string, version?: 4 | 6): string {
  const ver = typeof v === 'string' ? ipVersionOf(v.trim()) : undefined;
  if (ver === undefined || (version !== undefined && ver !== version)) {
    throw new ValidationError(`${field}: '${String(v)}' is not a valid IPv${version ?? '4 or IPv6'} address`, field);
  }
  return normaliseIp(v as string);
}

export function validateCidr(v: unknown, field: string): string {
  try {
    if (typeof v !== 'string') throw new Error();
    return normaliseCidr(v);
  } catch {
    throw new ValidationError(`${field}: '${String(v)}' is not a valid CIDR`, field);
  }
}

/** `addr/len` keeping the host part (node addresses); a bare address gets /32 or /128. */
export function validateInterfaceAddress(v: unknown, field: string, version: 4 | 6): string {
  if (typeof v !== 'string') throw new ValidationError(`${field}: '${String(v)}' is not a valid IPv${version} address`, field);
  const [addr, len] = v.split('/');
  const ip = validateIp(addr, field, version);
  const bits = version === 4 ? 32 : 128;
  if (len === undefined) return `${ip}/${bits}`;
  if (!/^\d+$/.test(len) || Number(len) > bits) throw new ValidationError(`${field}: '${v}' has a bad prefix length`, field);
  return `${ip}/${len}`;
}

export function validateLabels(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(`${field}: must be a mapping of label names to values`, field);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!LABEL_KEY_RE.test(k)) throw new ValidationError(`${field}: '${k}' is not a valid label name`, `${field}.${k}`);
    if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') {
      throw new ValidationError(`${field}.${k}: label values must be strings`, `${field}.${k}`);
    }
    const s = String(val);
    if (s.length > 63 || !/^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$/.test(s)) {
      throw new ValidationError(`${field}.${k}: '${s}' is not a valid label value`, `${field}.${k}`);
    }
    out[k] = s;
  }
  return out;
}

const MAC_RE = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;

function checkKnown(obj: Record<string, unknown> | undefined, known: string[], field: string): void {
  if (!obj) return;
  for (const k of Object.keys(obj)) if (!known.includes(k)) throw new ValidationError(`${field}.${k}: unknown field`, `${field}.${k}`, `known fields: ${known.join(', ')}`);
}

function asObject(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(`${field}: must be a mapping`, field);
  return v as Record<string, unknown>;
}

function asBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ValidationError(`${field}: '${String(v)}' must be true or false`, field);
  return v;
}

function rules(v: unknown, field: string, allowed?: Rule['action'][]): Rule[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ValidationError(`${field}: must be a list of rules`, field);
  return v.map((r, i) => validateRule(r, `${field}[${i}]`, allowed));
}

function stringList(v: unknown, field: string, each: (s: unknown, f: string) => string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ValidationError(`${field}: must be a list`, field);
  return v.map((s, i) => each(s, `${field}[${i}]`));
}

const strip = <T extends object>(o: T): T => {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
};

// ---------------------------------------------------------------- per-kind validation

/**
 * Validates and normalises one v1 document (already a plain object). Throws ValidationError naming
 * the document, the field and the bad value.
 */
export function validateResource(doc: unknown, where = 'resource'): Resource {
  const d = asObject(doc, where);
  if (d.apiVersion !== 'v1') throw new ValidationError(`${where}: apiVersion '${String(d.apiVersion ?? '')}' is not supported (use v1 or projectcalico.org/v3)`, 'apiVersion');
  if (typeof d.kind !== 'string') throw new ValidationError(`${where}: kind is missing`, 'kind');
  const kind: Kind = resolveKind(d.kind);
  checkKnown(d, ['apiVersion', 'kind', 'metadata', 'spec'], where);
  const md = asObject(d.metadata, `${where}.metadata`);
  const sp = asObject(d.spec, `${where}.spec`);
  const at = (f: string) => `${where}.${f}`;
  switch (kind) {
    case 'profile': {
      checkKnown(md, ['name', 'labels', 'tags'], at('metadata'));
      checkKnown(sp, ['ingress', 'egress'], at('spec'));
      return {
        apiVersion: 'v1', kind,
        metadata: strip({ name: validateProfileName(md.name, at('metadata.name')), labels: validateLabels(md.labels, at('metadata.labels')), tags: stringList(md.tags, at('metadata.tags'), (s, f) => validateProfileTag(s, f)) }),
        // Profiles do not support the pass action (v1.6).
        spec: strip({ ingress: rules(sp.ingress, at('spec.ingress'), ['allow', 'deny', 'log']), egress: rules(sp.egress, at('spec.egress'), ['allow', 'deny', 'log']) }),
      };
    }
    case 'policy': {
      checkKnown(md, ['name', 'annotations'], at('metadata'));
      checkKnown(sp, ['order', 'selector', 'types', 'ingress', 'egress', 'doNotTrack', 'preDNAT'], at('spec'));
      const name = validateName(md.name, at('metadata.name'));
      if (name.startsWith('knp.default.')) throw new ValidationError(`${at('metadata.name')}: '${name}': names starting knp.default. belong to the Kubernetes policy controller`, 'metadata.name');
      if (sp.order !== undefined && (typeof sp.order !== 'number' || !Number.isFinite(sp.order))) throw new ValidationError(`${at('spec.order')}: '${String(sp.order)}' must be a number`, 'spec.order');
      const types = sp.types === undefined ? undefined : stringList(sp.types, at('spec.types'), (t, f) => {
        const v = String(t).toLowerCase();
        if (v !== 'ingress' && v !== 'egress') throw new ValidationError(`${f}: '${String(t)}' must be ingress or egress`, f);
        return v;
      }) as Array<'ingress' | 'egress'>;
      const doNotTrack = asBool(sp.doNotTrack, at('spec.doNotTrack'));
      const preDNAT = asBool(sp.preDNAT, at('spec.preDNAT'));
      if (doNotTrack && preDNAT) throw new ValidationError(`${at('spec')}: doNotTrack and preDNAT cannot both be true`, 'spec');
      return {
        apiVersion: 'v1', kind,
        metadata: strip({ name, annotations: md.annotations as Record<string, string> | undefined }),
        spec: strip({
          order: sp.order as number | undefined,
          selector: sp.selector === undefined ? undefined : validateSelectorText(sp.selector, at('spec.selector')),
          types, ingress: rules(sp.ingress, at('spec.ingress')), egress: rules(sp.egress, at('spec.egress')), doNotTrack, preDNAT,
        }),
      };
    }
    case 'workloadEndpoint': {
      checkKnown(md, ['name', 'workload', 'orchestrator', 'node', 'hostname', 'labels', 'activeInstanceID'], at('metadata'));
      checkKnown(sp, ['ipNetworks', 'ipNATs', 'ipv4Gateway', 'ipv6Gateway', 'profiles', 'interfaceName', 'mac'], at('spec'));
      if (typeof sp.interfaceName !== 'string' || !/^[a-zA-Z0-9_.-]{1,15}$/.test(sp.interfaceName)) {
        throw new ValidationError(`${at('spec.interfaceName')}: '${String(sp.interfaceName ?? '')}' is not a valid interface name (1-15 characters)`, 'spec.interfaceName');
      }
      if (sp.mac !== undefined && (typeof sp.mac !== 'string' || !MAC_RE.test(sp.mac))) throw new ValidationError(`${at('spec.mac')}: '${String(sp.mac)}' is not a valid MAC address`, 'spec.mac');
      return {
        apiVersion: 'v1', kind,
        metadata: strip({
          name: validateName(md.name, at('metadata.name')),
          workload: validateName(md.workload, at('metadata.workload')),
          orchestrator: validateName(md.orchestrator, at('metadata.orchestrator')),
          node: validateName(md.node ?? md.hostname, at('metadata.node')),
          labels: validateLabels(md.labels, at('metadata.labels')),
          activeInstanceID: md.activeInstanceID as string | undefined,
        }),
        spec: strip({
          ipNetworks: stringList(sp.ipNetworks, at('spec.ipNetworks'), (s, f) => validateCidr(s, f)),
          ipNATs: sp.ipNATs === undefined ? undefined : (sp.ipNATs as Array<{ internalIP: string; externalIP: string }>).map((n, i) => ({
            internalIP: validateIp(n?.internalIP, at(`spec.ipNATs[${i}].internalIP`)), externalIP: validateIp(n?.externalIP, at(`spec.ipNATs[${i}].externalIP`)),
          })),
          ipv4Gateway: sp.ipv4Gateway === undefined ? undefined : validateIp(sp.ipv4Gateway, at('spec.ipv4Gateway'), 4),
          ipv6Gateway: sp.ipv6Gateway === undefined ? undefined : validateIp(sp.ipv6Gateway, at('spec.ipv6Gateway'), 6),
          profiles: stringList(sp.profiles, at('spec.profiles'), (s, f) => validateProfileName(s, f)),
          interfaceName: sp.interfaceName,
          mac: (sp.mac as string | undefined)?.toLowerCase().replace(/-/g, ':'),
        }),
      };
    }
    case 'hostEndpoint': {
      checkKnown(md, ['name', 'node', 'hostname', 'labels'], at('metadata'));
      checkKnown(sp, ['interfaceName', 'expectedIPs', 'profiles'], at('spec'));
      const expectedIPs = stringList(sp.expectedIPs, at('spec.expectedIPs'), (s, f) => validateIp(s, f));
      if (sp.interfaceName === undefined && !expectedIPs?.length) throw new ValidationError(`${at('spec')}: a host endpoint needs interfaceName or expectedIPs`, 'spec');
      return {
        apiVersion: 'v1', kind,
        metadata: strip({ name: validateName(md.name, at('metadata.name')), node: validateName(md.node ?? md.hostname, at('metadata.node')), labels: validateLabels(md.labels, at('metadata.labels')) }),
        spec: strip({
          interfaceName: sp.interfaceName === undefined ? undefined : validateName(sp.interfaceName, at('spec.interfaceName')),
          expectedIPs,
          profiles: stringList(sp.profiles, at('spec.profiles'), (s, f) => validateProfileName(s, f)),
        }),
      };
    }
    case 'ipPool': {
      checkKnown(md, ['cidr'], at('metadata'));
      checkKnown(sp, ['ipip', 'nat-outgoing', 'natOutgoing', 'disabled', 'blockSize'], at('spec'));
      const cidr = validateCidr(md.cidr, at('metadata.cidr'));
      const c = parseCidr(cidr);
      const ipipRaw = sp.ipip === undefined ? undefined : asObject(sp.ipip, at('spec.ipip'));
      if (ipipRaw) checkKnown(ipipRaw, ['enabled', 'mode'], at('spec.ipip'));
      const ipip = ipipRaw ? strip({
        enabled: ipipRaw.enabled === undefined ? true : asBool(ipipRaw.enabled, at('spec.ipip.enabled')),
        mode: ipipRaw.mode === undefined ? undefined : (() => {
          const m = String(ipipRaw.mode).toLowerCase();
          if (m !== 'always' && m !== 'cross-subnet') throw new ValidationError(`${at('spec.ipip.mode')}: '${String(ipipRaw.mode)}' must be always or cross-subnet`, 'spec.ipip.mode');
          return m as 'always' | 'cross-subnet';
        })(),
      }) : undefined;
      if (ipip?.enabled && c.version === 6) throw new ValidationError(`${at('spec.ipip')}: IP in IP not supported for IPv6 pools`, 'spec.ipip');
      const defaultBlock = c.version === 4 ? 26 : 122;
      const blockSize = sp.blockSize === undefined ? undefined : Number(sp.blockSize);
      if (blockSize !== undefined) {
        const [lo, hi] = c.version === 4 ? [20, 32] : [116, 128];
        if (!Number.isInteger(blockSize) || blockSize < lo || blockSize > hi) throw new ValidationError(`${at('spec.blockSize')}: '${String(sp.blockSize)}' must be ${lo}-${hi} for IPv${c.version}`, 'spec.blockSize');
      }
      if (c.prefixLength > (blockSize ?? defaultBlock)) {
        throw new ValidationError(`${at('metadata.cidr')}: pool ${cidr} is smaller than one IPAM block (/${blockSize ?? defaultBlock}); use a larger pool or a smaller blockSize`, 'metadata.cidr');
      }
      const linkLocal = parseCidr(c.version === 4 ? '169.254.0.0/16' : 'fe80::/10');
      if (cidrsOverlap(c, linkLocal)) throw new ValidationError(`${at('metadata.cidr')}: pool ${cidr} overlaps the link-local range`, 'metadata.cidr');
      return {
        apiVersion: 'v1', kind,
        metadata: { cidr },
        spec: strip({ ipip, 'nat-outgoing': asBool(sp['nat-outgoing'] ?? sp.natOutgoing, at('spec.nat-outgoing')), disabled: asBool(sp.disabled, at('spec.disabled')), blockSize }),
      };
    }
    case 'bgpPeer': {
      checkKnown(md, ['scope', 'node', 'hostname', 'peerIP', 'name'], at('metadata'));
      checkKnown(sp, ['asNumber', 'nodeSelector', 'peerSelector'], at('spec'));
      const scope = String(md.scope ?? (md.node || md.hostname ? 'node' : 'global')).toLowerCase();
      if (scope !== 'global' && scope !== 'node') throw new ValidationError(`${at('metadata.scope')}: '${String(md.scope)}' must be global or node`, 'metadata.scope');
      const node = md.node ?? md.hostname;
      if (scope === 'node' && node === undefined) throw new ValidationError(`${at('metadata.node')}: a node-scoped peer needs metadata.node`, 'metadata.node');
      if (scope === 'global' && node !== undefined) throw new ValidationError(`${at('metadata.node')}: a global peer must not name a node`, 'metadata.node');
      const selectorPeer = sp.nodeSelector !== undefined || sp.peerSelector !== undefined;
      if (selectorPeer && md.name === undefined) throw new ValidationError(`${at('metadata.name')}: a peer with selectors needs a name`, 'metadata.name');
      if (sp.peerSelector !== undefined && (md.peerIP !== undefined || sp.asNumber !== undefined)) {
        throw new ValidationError(`${at('spec.peerSelector')}: peerSelector cannot be combined with peerIP or asNumber`, 'spec.peerSelector');
      }
      if (!selectorPeer && md.peerIP === undefined) throw new ValidationError(`${at('metadata.peerIP')}: peerIP is required`, 'metadata.peerIP');
      if (!selectorPeer && sp.asNumber === undefined) throw new ValidationError(`${at('spec.asNumber')}: asNumber is required`, 'spec.asNumber');
      return {
        apiVersion: 'v1', kind,
        metadata: strip({
          scope: scope as 'global' | 'node',
          node: node === undefined ? undefined : validateName(node, at('metadata.node')),
          peerIP: md.peerIP === undefined ? undefined : validateIp(md.peerIP, at('metadata.peerIP')),
          name: md.name === undefined ? undefined : validateName(md.name, at('metadata.name')),
        }),
        spec: strip({
          asNumber: sp.asNumber === undefined ? undefined : parseAsNumber(sp.asNumber, at('spec.asNumber')),
          nodeSelector: sp.nodeSelector === undefined ? undefined : validateSelectorText(sp.nodeSelector, at('spec.nodeSelector')),
          peerSelector: sp.peerSelector === undefined ? undefined : validateSelectorText(sp.peerSelector, at('spec.peerSelector')),
        }),
      };
    }
    case 'node': {
      checkKnown(md, ['name', 'labels'], at('metadata'));
      checkKnown(sp, ['bgp'], at('spec'));
      const bgp = sp.bgp === undefined ? undefined : asObject(sp.bgp, at('spec.bgp'));
      if (bgp) checkKnown(bgp, ['asNumber', 'ipv4Address', 'ipv6Address', 'routeReflectorClusterID'], at('spec.bgp'));
      return {
        apiVersion: 'v1', kind,
        metadata: strip({ name: validateName(md.name, at('metadata.name')), labels: validateLabels(md.labels, at('metadata.labels')) }),
        spec: strip({
          bgp: bgp ? strip({
            asNumber: bgp.asNumber === undefined ? undefined : parseAsNumber(bgp.asNumber, at('spec.bgp.asNumber')),
            ipv4Address: bgp.ipv4Address === undefined ? undefined : validateInterfaceAddress(bgp.ipv4Address, at('spec.bgp.ipv4Address'), 4),
            ipv6Address: bgp.ipv6Address === undefined ? undefined : validateInterfaceAddress(bgp.ipv6Address, at('spec.bgp.ipv6Address'), 6),
            routeReflectorClusterID: bgp.routeReflectorClusterID === undefined ? undefined : validateIp(bgp.routeReflectorClusterID, at('spec.bgp.routeReflectorClusterID'), 4),
          }) : undefined,
        }),
      };
    }
    case 'bgpConfiguration': {
      checkKnown(md, ['name'], at('metadata'));
      checkKnown(sp, ['asNumber', 'nodeToNodeMeshEnabled', 'logSeverityScreen'], at('spec'));
      const name = validateName(md.name ?? 'default', at('metadata.name'));
      if (name !== 'default' && !name.startsWith('node.')) throw new ValidationError(`${at('metadata.name')}: '${name}' must be 'default' or 'node.<nodename>'`, 'metadata.name');
      if (name !== 'default' && sp.nodeToNodeMeshEnabled !== undefined) throw new ValidationError(`${at('spec.nodeToNodeMeshEnabled')}: can only be set in the 'default' configuration`, 'spec.nodeToNodeMeshEnabled');
      return {
        apiVersion: 'v1', kind,
        metadata: { name },
        spec: strip({
          asNumber: sp.asNumber === undefined ? undefined : parseAsNumber(sp.asNumber, at('spec.asNumber')),
          nodeToNodeMeshEnabled: asBool(sp.nodeToNodeMeshEnabled, at('spec.nodeToNodeMeshEnabled')),
          logSeverityScreen: sp.logSeverityScreen === undefined ? undefined : validateLogLevel(sp.logSeverityScreen, at('spec.logSeverityScreen')),
        }),
      };
    }
  }
}

export function validateProfileTag(v: unknown, field: string): string {
  if (typeof v !== 'string' || !/^[a-zA-Z0-9_.-]+$/.test(v)) {
    throw new ValidationError(`${field}: '${String(v)}' is not a valid tag: tags names can only contain numbers, letters, dots, dashes and underscores`, field);
  }
  return v;
}

export const LOG_LEVELS = ['none', 'debug', 'info', 'warning', 'error', 'critical', 'fatal'];
export function validateLogLevel(v: unknown, field: string): string {
  const s = String(v).toLowerCase();
  if (!LOG_LEVELS.includes(s)) throw new ValidationError(`${field}: '${String(v)}' is not a log level (${LOG_LEVELS.join(', ')})`, field);
  return s;
}

/** A stable identity for a resource, for messages and duplicate detection. */
export function resourceId(r: Resource): string {
  switch (r.kind) {
    case 'workloadEndpoint': return `${r.metadata.node}/${r.metadata.orchestrator}/${r.metadata.workload}/${r.metadata.name}`;
    case 'hostEndpoint': return `${r.metadata.node}/${r.metadata.name}`;
    case 'ipPool': return r.metadata.cidr;
    case 'bgpPeer': return r.metadata.name ?? `${r.metadata.scope}${r.metadata.node ? `/${r.metadata.node}` : ''}/${r.metadata.peerIP}`;
    default: return r.metadata.name;
  }
}
