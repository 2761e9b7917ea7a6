/**
 * Shared pieces of the IPAM tests: pool set-up, and an invariant checker that reads everything
 * IPAM stored and fails loudly if blocks, handles and affinity keys disagree in any way.
 */
import assert from 'node:assert/strict';
import { KV } from '../../src/datastore/kv.js';
import { keys } from '../../src/datastore/keys.js';
import { StoredPool, StoredBlock } from '../../src/model/stored.js';
import { parseCidr, formatIp } from '../../src/net/ip.js';
import { affinityHost, blockCapacity } from '../../src/ipam/block.js';
import { parseAffinityKey } from '../../src/ipam/query.js';

export async function addPool(kv: KV, cidr: string, extra: Partial<StoredPool> = {}): Promise<void> {
  const c = parseCidr(cidr);
  const pool: StoredPool = { cidr, masquerade: false, ipam: true, disabled: false, ...extra };
  await kv.put(keys.pool(cidr, c.version), JSON.stringify(pool));
}

export interface IpamSnapshot {
  /** Every allocated address -> its handle. */
  allocated: Map<string, string | null>;
  blocks: StoredBlock[];
  /** handle id -> {block cidr -> count} as stored. */
  handles: Map<string, Record<string, number>>;
  /** node -> affine block cidrs (from the affinity keys). */
  affinities: Map<string, string[]>;
}

/** Reads all IPAM state and checks every invariant. */
export async function checkIpam(kv: KV): Promise<IpamSnapshot> {
  const [b4, b6, h, a] = await Promise.all([
    kv.list(keys.ipamBlockPrefix(4)), kv.list(keys.ipamBlockPrefix(6)), kv.list(keys.ipamHandlePrefix), kv.list('/calico/ipam/v2/host/'),
  ]);
  const allocated = new Map<string, string | null>();
  const counted = new Map<string, Record<string, number>>();
  const blocks: StoredBlock[] = [];
  const blockAffinity = new Map<string, string | null>();
  for (const e of [...b4.entries, ...b6.entries]) {
    const b = JSON.parse(e.value) as StoredBlock;
    blocks.push(b);
    const c = parseCidr(b.cidr);
    assert.equal(e.key, keys.ipamBlock(b.cidr, c.version), 'block stored under its own key');
    const size = blockCapacity(c);
    assert.equal(b.allocations.length, size, `${b.cidr}: allocations length`);
    assert.deepEqual(Object.keys(b), ['cidr', 'affinity', 'strictAffinity', 'allocations', 'unallocated', 'attributes'], 'Calico field order');
    const free = new Set(b.unallocated);
    assert.equal(free.size, b.unallocated.length, `${b.cidr}: unallocated has duplicates`);
    const referenced = new Set<number>();
    let inUse = 0;
    b.allocations.forEach((idx, ord) => {
      if (idx === null) { assert.ok(free.has(ord), `${b.cidr}: free ordinal ${ord} missing from unallocated`); return; }
      inUse++;
      assert.ok(!free.has(ord), `${b.cidr}: ordinal ${ord} both allocated and unallocated`);
      const attr = b.attributes[idx];
      assert.ok(attr, `${b.cidr}: ordinal ${ord} refers to missing attribute ${idx}`);
      referenced.add(idx);
      const ip = formatIp({ version: c.version, value: c.network + BigInt(ord) });
      assert.ok(!allocated.has(ip), `${ip} allocated twice`);
      allocated.set(ip, attr.handle_id);
      if (attr.handle_id !== null) {
        const m = counted.get(attr.handle_id) ?? {};
        m[b.cidr] = (m[b.cidr] ?? 0) + 1;
        counted.set(attr.handle_id, m);
      }
    });
    assert.equal(inUse + free.size, size, `${b.cidr}: allocated + free != size`);
    assert.equal(referenced.size, b.attributes.length, `${b.cidr}: unreferenced attributes were not compacted`);
    assert.ok(!(inUse === 0 && b.affinity === null), `${b.cidr}: empty block without affinity was not deleted`);
    blockAffinity.set(b.cidr, affinityHost(b));
  }
  const handles = new Map<string, Record<string, number>>();
  for (const e of h.entries) {
    const id = decodeURIComponent(e.key.slice(keys.ipamHandlePrefix.length));
    handles.set(id, (JSON.parse(e.value) as { block: Record<string, number> }).block);
  }
  assert.deepEqual(new Map([...handles].sort()), new Map([...counted].sort()), 'handle counts match the blocks');
  const affinities = new Map<string, string[]>();
  for (const e of a.entries) {
    const p = parseAffinityKey(e.key);
    assert.ok(p, `unexpected key ${e.key}`);
    assert.equal(blockAffinity.get(p.cidr), p.node, `affinity key ${e.key} without a matching block`);
    affinities.set(p.node, [...(affinities.get(p.node) ?? []), p.cidr]);
  }
  for (const [cidr, node] of blockAffinity) {
    if (node !== null) assert.ok(affinities.get(node)?.includes(cidr), `block ${cidr} affine to ${node} has no affinity key`);
  }
  return { allocated, blocks, handles, affinities };
}
