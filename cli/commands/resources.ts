/** create / replace / apply / delete / get: the calicoctl v1 resource commands. */
import { kv, say } from '../context.js';
import { readResources } from './io.js';
import { Resource, resourceId } from '../../src/model/resources.js';
import { Kind, resolveKind } from '../../src/model/kinds.js';
import { listResources, listWorkloadEndpointIds, writeResources, deleteResources, ResourceFilter, WriteMode } from '../../src/datastore/resources.js';
import { CalicoError, NotFoundError, UsageError } from '../../src/errors.js';
import { parseOutputFormat, writeTabTable, toJson, toYaml } from '../output.js';
import { keys } from '../../src/datastore/keys.js';
import { DEFAULT_AS } from '../../src/model/stored.js';

const stdout = (text: string) => { process.stdout.write(text); };

const PAST: Record<WriteMode, string> = { create: 'created', replace: 'replaced', apply: 'applied' };

function summary(rs: Resource[]): string {
  const kinds = new Set(rs.map((r) => r.kind));
  return kinds.size === 1 ? `${rs.length} '${[...kinds][0]}' resource(s)` : `${rs.length} resource(s)`;
}

export async function write(mode: WriteMode, o: { filename: string; skipExists?: boolean }): Promise<void> {
  const resources = readResources(o.filename);
  try {
    const out = await writeResources(kv(), resources, mode, { skipExists: o.skipExists });
    say(`Successfully ${PAST[mode]} ${summary(out.written)}`);
    if (out.skipped.length) say(`Skipped ${summary(out.skipped)} that already existed`);
  } catch (err) {
    if (err instanceof CalicoError) {
      throw new CalicoError(`Failed to ${mode} ${summary(resources)}: ${err.message}`, { exitCode: err.exitCode, hint: err.hint });
    }
    throw err;
  }
}

function filterFrom(o: Record<string, string | boolean | undefined>): ResourceFilter {
  const f: ResourceFilter = {};
  for (const k of ['node', 'orchestrator', 'workload', 'scope'] as const) if (typeof o[k] === 'string') f[k] = o[k] as string;
  return f;
}

async function find(kind: Kind, names: string[], f: ResourceFilter, mustExist: boolean): Promise<{ found: Resource[]; missing: string[] }> {
  if (names.length === 0) return { found: await listResources(kv(), kind, f), missing: [] };
  const found: Resource[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const rs = await listResources(kv(), kind, { ...f, name });
    if (rs.length === 0) {
      if (mustExist) throw new NotFoundError(`resource does not exist: ${kind} ${name}${f.node ? ` on node ${f.node}` : ''}`);
      missing.push(name);
    }
    found.push(...rs);
  }
  return { found, missing };
}

export async function del(kindText: string | undefined, names: string[], o: Record<string, string | boolean | undefined>): Promise<void> {
  let targets: Resource[];
  if (typeof o.filename === 'string') {
    if (kindText) throw new UsageError('give either -f FILE or KIND NAME, not both');
    targets = readResources(o.filename);
  } else {
    if (!kindText || names.length === 0) throw new UsageError('delete needs -f FILE, or a KIND and at least one NAME', 'e.g. calicoctl delete profile web');
    const kind = resolveKind(kindText);
    const { found, missing } = await find(kind, names, filterFrom(o), !o.skipNotExists);
    if (kind === 'workloadEndpoint' || kind === 'hostEndpoint' || kind === 'bgpPeer') {
      for (const n of names) {
        const hits = found.filter((r) => resourceId(r).endsWith(`/${n}`) || resourceId(r) === n);
        if (hits.length > 1) {
          throw new UsageError(`${hits.length} ${kind}s are named ${n}: ${hits.map(resourceId).join(', ')}`, 'narrow it down with --node, --orchestrator, --workload or --scope');
        }
      }
    }
    targets = found;
    if (missing.length) say(`Skipped ${missing.length} resource(s) that did not exist: ${missing.join(', ')}`);
  }
  const out = await deleteResources(kv(), targets, { skipNotExists: o.skipNotExists === true });
  if (out.missing.length) say(`Skipped ${summary(out.missing)} that did not exist`);
  say(`Successfully deleted ${summary(out.deleted)}`);
}

// ------------------------------------------------------------------ get

interface Columns {
  ps: string[];
  wide: string[];
  extra?: string[];
  cell(r: Resource, col: string, ctx: { globalAs: string }): string;
}

const join = (a: unknown[] | undefined) => (a ?? []).join(',');

const COLUMNS: Record<Kind, Columns> = {
  node: {
    ps: ['NAME'], wide: ['NAME', 'ASN', 'IPV4', 'IPV6'],
    cell: (r, c, ctx) => {
      if (r.kind !== 'node') return '';
      const b = r.spec.bgp ?? {};
      switch (c) {
        case 'NAME': return r.metadata.name;
        case 'ASN': return b.asNumber !== undefined ? String(b.asNumber) : `(${ctx.globalAs})`;
        case 'IPV4': return b.ipv4Address ?? '';
        case 'IPV6': return b.ipv6Address ?? '';
      }
      return '';
    },
  },
  bgpPeer: {
    ps: ['SCOPE', 'PEERIP', 'NODE', 'ASN'], wide: ['SCOPE', 'PEERIP', 'NODE', 'ASN'], extra: ['NAME', 'NODESELECTOR', 'PEERSELECTOR'],
    cell: (r, c) => {
      if (r.kind !== 'bgpPeer') return '';
      switch (c) {
        case 'SCOPE': return r.metadata.scope;
        case 'PEERIP': return r.metadata.peerIP ?? '';
        case 'NODE': return r.metadata.node ?? '';
        case 'ASN': return r.spec.asNumber !== undefined ? String(r.spec.asNumber) : '';
        case 'NAME': return r.metadata.name ?? '';
        case 'NODESELECTOR': return r.spec.nodeSelector ?? '';
        case 'PEERSELECTOR': return r.spec.peerSelector ?? '';
      }
      return '';
    },
  },
  hostEndpoint: {
    ps: ['NODE', 'NAME'], wide: ['NODE', 'NAME', 'INTERFACE', 'IPS', 'PROFILES'],
    cell: (r, c) => {
      if (r.kind !== 'hostEndpoint') return '';
      switch (c) {
        case 'NODE': return r.metadata.node;
        case 'NAME': return r.metadata.name;
        case 'INTERFACE': return r.spec.interfaceName ?? '';
        case 'IPS': return join(r.spec.expectedIPs);
        case 'PROFILES': return join(r.spec.profiles);
      }
      return '';
    },
  },
  workloadEndpoint: {
    ps: ['NODE', 'ORCHESTRATOR', 'WORKLOAD', 'NAME'],
    wide: ['NODE', 'ORCHESTRATOR', 'WORKLOAD', 'NAME', 'NETWORKS', 'NATS', 'INTERFACE', 'PROFILES'],
    extra: ['IPV4GATEWAY', 'IPV6GATEWAY', 'MAC'],
    cell: (r, c) => {
      if (r.kind !== 'workloadEndpoint') return '';
      switch (c) {
        case 'NODE': return r.metadata.node;
        case 'ORCHESTRATOR': return r.metadata.orchestrator;
        case 'WORKLOAD': return r.metadata.workload;
        case 'NAME': return r.metadata.name;
        case 'NETWORKS': return join(r.spec.ipNetworks);
        case 'NATS': return join((r.spec.ipNATs ?? []).map((n) => `${n.internalIP}-${n.externalIP}`));
        case 'INTERFACE': return r.spec.interfaceName;
        case 'PROFILES': return join(r.spec.profiles);
        // The original printed the v4 gateway in both columns (a bug); we print each.
        case 'IPV4GATEWAY': return r.spec.ipv4Gateway ?? '';
        case 'IPV6GATEWAY': return r.spec.ipv6Gateway ?? '';
        case 'MAC': return r.spec.mac ?? '';
      }
      return '';
    },
  },
  ipPool: {
    ps: ['CIDR'], wide: ['CIDR', 'NAT', 'IPIP'], extra: ['DISABLED', 'BLOCKSIZE'],
    cell: (r, c) => {
      if (r.kind !== 'ipPool') return '';
      switch (c) {
        case 'CIDR': return r.metadata.cidr;
        case 'NAT': return String(r.spec['nat-outgoing'] ?? false);
        case 'IPIP': return String(r.spec.ipip?.enabled ?? false);
        case 'DISABLED': return String(r.spec.disabled ?? false);
        case 'BLOCKSIZE': return String(r.spec.blockSize ?? (r.metadata.cidr.includes(':') ? 122 : 26));
      }
      return '';
    },
  },
  policy: {
    ps: ['NAME'], wide: ['NAME', 'ORDER', 'SELECTOR'],
    cell: (r, c) => {
      if (r.kind !== 'policy') return '';
      switch (c) {
        case 'NAME': return r.metadata.name;
        case 'ORDER': return r.spec.order !== undefined ? String(r.spec.order) : '';
        case 'SELECTOR': return r.spec.selector ?? '';
      }
      return '';
    },
  },
  profile: {
    ps: ['NAME'], wide: ['NAME', 'TAGS'],
    cell: (r, c) => {
      if (r.kind !== 'profile') return '';
      return c === 'NAME' ? r.metadata.name : c === 'TAGS' ? join(r.metadata.tags) : '';
    },
  },
  bgpConfiguration: {
    ps: ['NAME'], wide: ['NAME', 'ASN', 'MESH', 'LOGSEVERITY'],
    cell: (r, c) => {
      if (r.kind !== 'bgpConfiguration') return '';
      switch (c) {
        case 'NAME': return r.metadata.name;
        case 'ASN': return r.spec.asNumber !== undefined ? String(r.spec.asNumber) : '';
        case 'MESH': return r.spec.nodeToNodeMeshEnabled === undefined ? '' : r.spec.nodeToNodeMeshEnabled ? 'on' : 'off';
        case 'LOGSEVERITY': return r.spec.logSeverityScreen ?? '';
      }
      return '';
    },
  },
};

/** The columns to print when they all come from the workload endpoint's key, else undefined. */
function keyOnlyColumns(kind: Kind, format: ReturnType<typeof parseOutputFormat>): string[] | undefined {
  if (kind !== 'workloadEndpoint' || format === 'yaml' || format === 'json' || format === 'wide') return undefined;
  const keyColumns = COLUMNS.workloadEndpoint.ps;
  const cols = format === 'ps' ? keyColumns : format.columns;
  return cols.every((c) => keyColumns.includes(c)) ? cols : undefined;
}

export async function get(kindText: string | undefined, names: string[], o: Record<string, string | undefined>): Promise<void> {
  // A listing may build thousands of short-lived objects: let the young generation grow (the
  // default 1 MiB semi-space spent a fifth of a 10k-endpoint listing in scavenges). Set here, not
  // at start-up, where a large semi-space cost every command ~20 ms (measured in bench/cli.ts).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('v8').setFlagsFromString('--max-semi-space-size=16');
  const format = parseOutputFormat(o.output);
  let rs: Resource[];
  let kind: Kind;
  if (o.filename) {
    const wanted = readResources(o.filename);
    rs = [];
    for (const w of wanted) {
      const filt: ResourceFilter = {};
      if ('node' in w.metadata && typeof w.metadata.node === 'string') filt.node = w.metadata.node;
      const all = await listResources(kv(), w.kind, filt);
      const hit = all.find((r) => resourceId(r) === resourceId(w));
      if (!hit) throw new NotFoundError(`resource does not exist: ${w.kind} ${resourceId(w)}`);
      rs.push(hit);
    }
    kind = wanted[0]!.kind;
  } else {
    if (!kindText) throw new UsageError('get needs a KIND (or -f FILE)', 'e.g. calicoctl get profiles -o wide');
    kind = resolveKind(kindText);
    const keyCols = names.length === 0 ? keyOnlyColumns(kind, format) : undefined;
    if (keyCols) {
      // Every column asked for is part of the key: list keys only (10 000 endpoints in ~1/3 the bytes).
      const ids = await listWorkloadEndpointIds(kv(), filterFrom(o));
      const cell = (m: (typeof ids)[number], c: string) => (c === 'NODE' ? m.node : c === 'ORCHESTRATOR' ? m.orchestrator : c === 'WORKLOAD' ? m.workload : m.name);
      writeTabTable(keyCols, ids.map((m) => keyCols.map((h) => cell(m, h))), stdout);
      return;
    }
    rs = (await find(kind, names, filterFrom(o), true)).found;
  }
  if (format === 'yaml') { process.stdout.write(toYaml(rs)); return; }
  if (format === 'json') { process.stdout.write(toJson(rs) + '\n'); return; }
  const cols = COLUMNS[kind];
  const headers = format === 'ps' ? cols.ps : format === 'wide' ? cols.wide : format.columns;
  const known = new Set([...cols.wide, ...cols.ps, ...(cols.extra ?? [])]);
  for (const h of headers) if (!known.has(h)) throw new UsageError(`unknown column '${h}' for ${kind}`, `known columns: ${[...known].join(', ')}`);
  const globalAs = kind === 'node' ? ((await kv().get(keys.bgpGlobalAs))?.value || String(DEFAULT_AS)) : '';
  writeTabTable(headers, rs.map((r) => headers.map((h) => cols.cell(r, h, { globalAs }))), stdout);
}
