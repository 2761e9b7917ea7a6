/**
 * A separate IPAM client process for the cross-process contention test (not a test file itself).
 *   node worker.js assign <endpoint> <node> <count> <handlePrefix> <concurrency> <out.json>
 *   node worker.js release <endpoint> <in.json> <concurrency>
 * `assign` makes <count> autoAssign calls (one IPv4 each, every fourth also one IPv6) with handles
 * <handlePrefix>-<i>, <concurrency> at a time, and writes {handle: [ips]} to <out.json>.
 * `release` frees what such a file lists: odd entries by handle, even ones by address.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connectKV } from '../../src/datastore/connect.js';
import { autoAssign, releaseByHandle, releaseIps } from '../../src/ipam/index.js';

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) { const i = next++; await fn(items[i]!); }
  }));
}

async function main(): Promise<void> {
  const [mode, endpoint] = process.argv.slice(2);
  const kv = connectKV({ endpoints: [endpoint!], isDefault: false }, 'cli');
  try {
    if (mode === 'assign') {
      const [, , node, count, prefix, conc, out] = process.argv.slice(2);
      const result: Record<string, string[]> = {};
      const idx = Array.from({ length: Number(count) }, (_, i) => i);
      await pool(idx, Number(conc), async (i) => {
        const handleId = `${prefix}-${i}`;
        const r = await autoAssign(kv, { node: node!, num4: 1, num6: i % 4 === 0 ? 1 : 0, handleId });
        result[handleId] = [...r.ipv4, ...r.ipv6];
      });
      writeFileSync(out!, JSON.stringify(result));
    } else if (mode === 'release') {
      const [, , file, conc] = process.argv.slice(2);
      const entries = Object.entries(JSON.parse(readFileSync(file!, 'utf8')) as Record<string, string[]>);
      await pool(entries.map((e, i) => ({ e, i })), Number(conc), async ({ e: [handle, ips], i }) => {
        if (i % 2 === 1) {
          const released = await releaseByHandle(kv, handle);
          if (released.length !== ips.length) throw new Error(`handle ${handle}: released ${released.length} of ${ips.length}`);
        } else {
          const notAssigned = await releaseIps(kv, ips);
          if (notAssigned.length) throw new Error(`not assigned: ${notAssigned.join(',')}`);
        }
      });
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    kv.close();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
