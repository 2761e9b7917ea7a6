/**
 * projectcalico.org/v3 documents (IPPool, BGPPeer, BGPConfiguration, Profile, Node) converted into
 * the v1 model, so that both can be written to the same keys. Only the fields the v1 model can
 * carry are accepted; anything else is refused by name rather than silently dropped.
 */
import { ValidationError } from '../errors.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

function only(o: Obj, known: string[], field: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new ValidationError(`${field}.${k}: not supported by this calicoctl (known: ${known.join(', ')})`, `${field}.${k}`);
  }
}

const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v);

function ruleFromV3(r: unknown): unknown {
  const o = obj(r);
  const out: Obj = { ...o };
  if (o.action !== undefined) out.action = lower(o.action);
  if (o.protocol !== undefined) out.protocol = lower(o.protocol);
  if (o.notProtocol !== undefined) out.notProtocol = lower(o.notProtocol);
  for (const side of ['source', 'destination']) {
    if (o[side] === undefined) continue;
    const e = { ...obj(o[side]) };
    delete e.namespaceSelector;
    out[side] = e;
  }
  return out;
}

/** Converts one v3 document into a v1 document (still to be validated by validateResource). */
export function fromV3(doc: Obj, where: string): Obj {
  const kind = String(doc.kind ?? '');
  const md = obj(doc.metadata);
  const sp = obj(doc.spec);
  const name = md.name;
  // Kubernetes-style bookkeeping fields are accepted and ignored.
  const mdKnown = ['name', 'labels', 'annotations', 'resourceVersion', 'uid', 'creationTimestamp'];
  only(md, mdKnown, `${where}.metadata`);
  switch (kind.toLowerCase()) {
    case 'ippool': {
      only(sp, ['cidr', 'ipipMode', 'vxlanMode', 'natOutgoing', 'disabled', 'blockSize', 'nodeSelector'], `${where}.spec`);
      if (sp.vxlanMode !== undefined && String(sp.vxlanMode) !== 'Never') throw new ValidationError(`${where}.spec.vxlanMode: VXLAN is not supported (use Never)`, 'spec.vxlanMode');
      if (sp.nodeSelector !== undefined && String(sp.nodeSelector).trim() !== 'all()') throw new ValidationError(`${where}.spec.nodeSelector: per-node pools are not supported (use all())`, 'spec.nodeSelector');
      const mode = sp.ipipMode === undefined ? 'never' : String(sp.ipipMode).toLowerCase();
      if (!['never', 'always', 'crosssubnet'].includes(mode)) throw new ValidationError(`${where}.spec.ipipMode: '${String(sp.ipipMode)}' must be Always, CrossSubnet or Never`, 'spec.ipipMode');
      const spec: Obj = {};
      if (mode !== 'never') spec.ipip = { enabled: true, mode: mode === 'crosssubnet' ? 'cross-subnet' : 'always' };
      if (sp.natOutgoing !== undefined) spec['nat-outgoing'] = sp.natOutgoing;
      if (sp.disabled !== undefined) spec.disabled = sp.disabled;
      if (sp.blockSize !== undefined) spec.blockSize = sp.blockSize;
      return { apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: sp.cidr }, spec };
    }
    case 'bgppeer': {
      only(sp, ['node', 'peerIP', 'asNumber', 'nodeSelector', 'peerSelector'], `${where}.spec`);
      const selector = sp.nodeSelector !== undefined || sp.peerSelector !== undefined;
      const metadata: Obj = { scope: sp.node ? 'node' : 'global' };
      if (sp.node) metadata.node = sp.node;
      if (sp.peerIP !== undefined) metadata.peerIP = String(sp.peerIP).replace(/:\d+$/, (m) => (String(sp.peerIP).includes('.') ? '' : m));
      if (selector) metadata.name = name;
      const spec: Obj = {};
      if (sp.asNumber !== undefined) spec.asNumber = sp.asNumber;
      if (sp.nodeSelector !== undefined) spec.nodeSelector = sp.nodeSelector;
      if (sp.peerSelector !== undefined) spec.peerSelector = sp.peerSelector;
      return { apiVersion: 'v1', kind: 'bgpPeer', metadata, spec };
    }
    case 'bgpconfiguration': {
      only(sp, ['asNumber', 'nodeToNodeMeshEnabled', 'logSeverityScreen'], `${where}.spec`);
      const spec: Obj = {};
      if (sp.asNumber !== undefined) spec.asNumber = sp.asNumber;
      if (sp.nodeToNodeMeshEnabled !== undefined) spec.nodeToNodeMeshEnabled = sp.nodeToNodeMeshEnabled;
      if (sp.logSeverityScreen !== undefined) spec.logSeverityScreen = lower(sp.logSeverityScreen);
      return { apiVersion: 'v1', kind: 'bgpConfiguration', metadata: { name: name ?? 'default' }, spec };
    }
    case 'profile': {
      only(sp, ['ingress', 'egress', 'labelsToApply'], `${where}.spec`);
      const spec: Obj = {};
      if (sp.ingress !== undefined) spec.ingress = (sp.ingress as unknown[]).map(ruleFromV3);
      if (sp.egress !== undefined) spec.egress = (sp.egress as unknown[]).map(ruleFromV3);
      const metadata: Obj = { name };
      if (sp.labelsToApply !== undefined) metadata.labels = sp.labelsToApply;
      return { apiVersion: 'v1', kind: 'profile', metadata, spec };
    }
    case 'node': {
      only(sp, ['bgp'], `${where}.spec`);
      const bgp = obj(sp.bgp);
      only(bgp, ['asNumber', 'ipv4Address', 'ipv6Address', 'routeReflectorClusterID', 'ipv4IPIPTunnelAddr'], `${where}.spec.bgp`);
      const b: Obj = {};
      for (const k of ['asNumber', 'ipv4Address', 'ipv6Address', 'routeReflectorClusterID']) if (bgp[k] !== undefined) b[k] = bgp[k];
      const metadata: Obj = { name };
      if (md.labels !== undefined) metadata.labels = md.labels;
      return { apiVersion: 'v1', kind: 'node', metadata, spec: sp.bgp === undefined ? {} : { bgp: b } };
    }
    default:
      throw new ValidationError(
        `${where}: kind '${kind}' is not supported in projectcalico.org/v3 documents (supported: IPPool, BGPPeer, BGPConfiguration, Profile, Node)`,
        'kind',
      );
  }
}
