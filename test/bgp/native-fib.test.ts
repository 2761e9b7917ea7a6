/**
 * The native route programmer (native/calico-fib.c through fib.ts) against the real kernel, in
 * namespaces this test makes: 10k changes (IPv4/IPv6, ECMP, blackhole, onlink via tunl0), then
 * replacements and deletions, compared with `ip route show proto bird`; the same script through
 * the `ip -batch` workers must leave the same table and report the same refusals; per-request
 * errors; the helper's own protocol and its exit when stdin closes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { KernelFib, FibCommand, specOf } from '../../node/bgp/fib.js';
import { ensureNativeProgrammer, specToHops } from '../../node/bgp/fib-native.js';
import { createLogger } from '../../src/log.js';
import { sh } from './lib/netns.js';
import { FibError } from '../../node/bgp/errors.js';

const made: string[] = [];
const children = new Set<number>();
after(() => {
  for (const pid of children) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const ns of made) { try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ } }
});
process.on('exit', () => { for (const ns of made) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } } });

/** A namespace with eth0 (10.77.0.1/24, fd77::1/64; its veth peer stays inside too) and a veth named tunl0. */
function makeNs(tag: string): string {
  const ns = `nfib${tag}${process.pid}`;
  sh('ip', ['netns', 'add', ns]);
  made.push(ns);
  const ip = (...a: string[]) => sh('ip', ['-n', ns, ...a]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
  ip('link', 'add', 'tunl0', 'type', 'veth', 'peer', 'name', 'tunl0p');
  for (const l of ['eth0', 'eth0p', 'tunl0', 'tunl0p']) ip('link', 'set', l, 'up');
  ip('addr', 'add', '10.77.0.1/24', 'dev', 'eth0');
  ip('addr', 'add', 'fd77::1/64', 'dev', 'eth0', 'nodad');
  return ns;
}

function kernelTable(ns: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const fam of ['-4', '-6']) {
    const text = execFileSync('ip', ['-n', ns, '-j', fam, 'route', 'show', 'proto', 'bird'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const r of (text.trim() ? JSON.parse(text) : []) as Array<Record<string, unknown>>) {
      let dst = String(r.dst);
      if (!dst.includes('/')) dst += fam === '-4' ? '/32' : '/128';
      assert.equal(r.metric, 32, `${dst} metric`);
      out.set(dst, specOf(r));
    }
  }
  return out;
}

/** Asserts two tables are equal, naming the first differing routes (a 10k-entry diff is unreadable). */
function assertSameTable(actual: Map<string, string>, want: Map<string, string>, label: string): void {
  const diff: string[] = [];
  for (const [k, v] of want) if (actual.get(k) !== v) diff.push(`${k}: want '${v}', kernel has '${actual.get(k) ?? '(none)'}'`);
  for (const [k, v] of actual) if (!want.has(k)) diff.push(`${k}: unexpected '${v}'`);
  assert.deepEqual(diff.slice(0, 10), [], `${label}: ${diff.length} differences`);
}

const v4 = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
const v6 = (i: number) => `fd99::${(i + 1).toString(16)}/128`; // canonical text, as ip prints it
const ecmp4 = 'nexthop via 10.77.0.2 weight 1 nexthop via 10.77.0.3 weight 1';
const ecmp6 = 'nexthop via fd77::2 weight 1 nexthop via fd77::3 weight 1';

/** 10k installs of every kind; then 3k replacements, 2k deletions; plus refusals. */
function script(): { first: FibCommand[]; second: FibCommand[]; want: Map<string, string>; refused: string[] } {
  const first: FibCommand[] = [];
  for (let i = 0; i < 5000; i++) first.push({ prefix: v4(i), spec: 'via 10.77.0.2' });
  for (let i = 5000; i < 6000; i++) first.push({ prefix: v4(i), spec: ecmp4 });
  for (let i = 6000; i < 7000; i++) first.push({ prefix: v4(i), spec: 'blackhole' });
  for (let i = 7000; i < 8000; i++) first.push({ prefix: v4(i), spec: `via 192.168.${(i >> 8) & 255}.${i & 255} dev tunl0 onlink` });
  for (let i = 0; i < 1000; i++) first.push({ prefix: v6(i), spec: 'via fd77::2' });
  for (let i = 1000; i < 1500; i++) first.push({ prefix: v6(i), spec: ecmp6 });
  for (let i = 1500; i < 2000; i++) first.push({ prefix: v6(i), spec: 'blackhole' });
  // Refused: a gateway that is not on any link (v4 and v6), and a route that is not there to delete.
  first.push({ prefix: '10.250.0.0/24', spec: 'via 10.200.0.1' });
  first.push({ prefix: 'fd98::/64', spec: 'via fd66::1' });
  first.push({ prefix: '10.251.0.0/24', spec: '' });
  const want = new Map<string, string>();
  for (const c of first) if (c.spec && !['10.250.0.0/24', 'fd98::/64'].includes(c.prefix)) want.set(c.prefix, c.spec);
  const second: FibCommand[] = [];
  const change = (prefix: string, spec: string) => { second.push({ prefix, spec }); if (spec) want.set(prefix, spec); else want.delete(prefix); };
  for (let i = 0; i < 1000; i++) change(v4(i), ecmp4);                              // via -> ECMP
  for (let i = 5000; i < 5500; i++) change(v4(i), 'via 10.77.0.3');                 // ECMP -> via
  for (let i = 6000; i < 6500; i++) change(v4(i), 'via 10.77.0.2');                 // blackhole -> via
  for (let i = 7000; i < 7500; i++) change(v4(i), 'via 10.77.0.2');                 // onlink -> plain
  for (let i = 1000; i < 1500; i++) change(v6(i), 'blackhole');                     // v6 ECMP -> blackhole
  for (let i = 1000; i < 2000; i++) change(v4(i), '');                              // deletions
  for (let i = 6500; i < 7000; i++) change(v4(i), '');
  for (let i = 0; i < 500; i++) change(v6(i), '');
  // Added and removed again in the same burst: order per prefix must hold.
  for (let i = 9000; i < 9100; i++) { change(v4(i), 'via 10.77.0.2'); change(v4(i), ''); }
  return { first, second, want, refused: ['10.250.0.0/24', 'fd98::/64', '10.251.0.0/24'] };
}

async function runScript(mode: 'native' | 'ip', ns: string): Promise<{ afterFirst: Map<string, string>; table: Map<string, string>; refused: string[]; fib: KernelFib }> {
  const fib = new KernelFib({ logger: createLogger({ level: 'error' }), mode, netns: ns });
  fib.start();
  assert.equal(fib.mechanism, mode);
  const refused: string[] = [];
  fib.onFailure = (cmd) => refused.push(cmd.prefix);
  try {
    const s = script();
    for (const c of s.first) fib.queue(c);
    await fib.settled();
    const afterFirst = kernelTable(ns);
    for (const c of s.second) fib.queue(c);
    await fib.settled();
    return { afterFirst, table: kernelTable(ns), refused: refused.sort(), fib };
  } finally {
    await fib.stop();
  }
}

test('specToHops turns every RIB spec form into helper next hops, and rejects others', () => {
  assert.equal(specToHops('blackhole'), 'blackhole');
  assert.equal(specToHops('via 10.0.0.2'), '10.0.0.2');
  assert.equal(specToHops('via 10.0.0.2 dev tunl0 onlink'), '10.0.0.2@tunl0!');
  assert.equal(specToHops('nexthop via 10.0.0.2 weight 1 nexthop via 10.0.0.3 dev tunl0 onlink weight 1'), '10.0.0.2 10.0.0.3@tunl0!');
  assert.equal(specToHops('nexthop via fd00::2 weight 1 nexthop via fd00::3 weight 1'), 'fd00::2 fd00::3');
  assert.throws(() => specToHops('unknown'));
  assert.throws(() => specToHops('via 10.0.0.2 weight 3'));
  assert.throws(() => specToHops('dev eth0'));
});

test('native programmer: 10k installs, replacements and deletions match what was asked; refusals are reported per route; same result as ip -batch', async () => {
  ensureNativeProgrammer();
  const s = script();
  const firstWant = new Map<string, string>();
  for (const c of s.first) if (c.spec && !s.refused.includes(c.prefix)) firstWant.set(c.prefix, c.spec);
  assert.equal(firstWant.size, 10_000);

  const nsN = makeNs('n');
  const native = await runScript('native', nsN);
  assertSameTable(native.afterFirst, firstWant, 'native, after the installs');
  assertSameTable(native.table, s.want, 'native, after replacements and deletions');
  assert.deepEqual(native.refused, [...s.refused].sort());
  assert.equal(native.fib.failures, 3);
  assert.equal(native.fib.changes, s.first.length + s.second.length);

  const nsI = makeNs('i');
  const ip = await runScript('ip', nsI);
  assertSameTable(ip.table, native.table, 'ip -batch vs native');
  assert.deepEqual(ip.refused, native.refused);
});

test('without a usable native programmer, auto mode falls back to ip -batch workers and native mode refuses to start', async () => {
  const ns = makeNs('f');
  const logger = createLogger({ level: 'error' });
  const fib = new KernelFib({ logger, netns: ns, mode: 'auto', nativeBin: '/nonexistent/calico-fib' });
  fib.start();
  try {
    assert.equal(fib.mechanism, 'ip');
    fib.queue({ prefix: '10.62.0.0/24', spec: 'via 10.77.0.2' });
    await fib.settled();
    assertSameTable(kernelTable(ns), new Map([['10.62.0.0/24', 'via 10.77.0.2']]), 'fallback');
  } finally {
    await fib.stop();
  }
  assert.throws(() => new KernelFib({ logger, netns: ns, mode: 'native', nativeBin: '/nonexistent/calico-fib' }).start(), FibError);
});

test('calico-fib: per-request errors with their sequence numbers, sync answers, exit when stdin closes', async () => {
  const bin = ensureNativeProgrammer();
  const ns = makeNs('p');
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, bin], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child.pid!);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const waitOut = async (line: string) => {
    while (!out.split('\n').includes(line)) {
      assert.equal(child.exitCode, null, `calico-fib exited before answering '${line}': ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  child.stdin.write([
    'r 1 10.60.0.0/24 254 12 32 10.77.0.2',
    'r 2 10.60.1.0/24 254 12 32 10.199.0.1',            // unreachable gateway
    'r 3 10.60.2.0/24 254 12 32 10.77.0.2@nosuchdev',   // unknown device
    'r 4 10.60.3.0/33 254 12 32 10.77.0.2',             // bad prefix
    'x 5',                                              // unknown request
    'd 6 10.60.9.0/24 254 12 32',                       // nothing to delete
    'r 7 fd60::/64 254 12 32 fd77::2 fd55::3@tunl0!',
    's 8',
    '',
  ].join('\n'));
  await waitOut('s 8');
  const lines = out.trim().split('\n');
  assert.equal(lines.at(-1), 's 8', 'sync comes after every answer to earlier requests');
  const errs = new Map(lines.filter((l) => l.startsWith('e ')).map((l) => { const [, seq, errno] = l.split(' '); return [Number(seq), Number(errno)]; }));
  assert.deepEqual([...errs.keys()].sort((a, b) => a - b), [2, 3, 4, 5, 6]);
  assert.equal(errs.get(2), 101); // ENETUNREACH
  assert.equal(errs.get(3), 19);  // ENODEV
  assert.equal(errs.get(4), 22);  // EINVAL
  assert.equal(errs.get(6), 3);   // ESRCH
  assertSameTable(kernelTable(ns), new Map([
    ['10.60.0.0/24', 'via 10.77.0.2'],
    ['fd60::/64', 'nexthop via fd55::3 dev tunl0 onlink weight 1 nexthop via fd77::2 weight 1'],
  ]), 'helper');
  // The last request of a send is the one that carries the ACK: when it fails, its error must
  // still complete the sync.
  child.stdin.write('r 10 10.61.0.0/24 254 12 32 10.198.0.1\ns 11\n');
  await waitOut('s 11');
  assert.ok(out.includes('\ne 10 101 '), out);
  child.stdin.end('d 9 10.60.0.0/24 254 12 32\n');
  assert.equal(await exited, 0);
  children.delete(child.pid!);
  assert.equal(out.includes('e 9 '), false, 'a delete of an existing route succeeds silently');
  assertSameTable(kernelTable(ns), new Map([['fd60::/64', 'nexthop via fd55::3 dev tunl0 onlink weight 1 nexthop via fd77::2 weight 1']]), 'requests before EOF are carried out');
});
