/**
 * A fast BGP route sender for the ingestion benchmark. It pre-encodes every UPDATE before it
 * connects (N IPv4 /32s from 10.64.0.0, one shared attribute set, ~800 prefixes per 4 KB message),
 * so that the receiver, not the sender, is what gets measured. Run inside a namespace:
 *   ip netns exec <ns> node dist/bench/bgp/sender.js '{"target":"10.99.0.1","local":"10.99.0.9","count":100000}'
 * Prints JSON lines: {"event":"established","t":<ms epoch>} and {"event":"sent","t":...}; keeps the
 * session alive with keepalives until stdin closes.
 */
import { RawBgp } from '../../test/bgp/lib/raw.js';
import { buildAnnouncements, buildEndOfRib } from '../../node/bgp/codec/update.js';
import { encodeAttrs } from '../../node/bgp/codec/attrs.js';
import { AFI_IPV4 } from '../../node/bgp/codec/constants.js';
import { KEEPALIVE } from '../../node/bgp/codec/header.js';
import { parseAddress } from '../../node/bgp/codec/prefix.js';

function* prefixes(count: number): Generator<Uint32Array> {
  const base = ((10 << 24) | (64 << 16)) >>> 0;
  const w = new Uint32Array(2);
  for (let i = 0; i < count; i++) { w[0] = (base + i) >>> 0; w[1] = 32; yield w; }
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as { target: string; local: string; count: number; as?: number };
  const asn = a.as ?? 64512;
  const attrs = encodeAttrs({ origin: 0, asPath: [], nextHop: '', localPref: 100 }, { as4: true, classicNextHop: a.local });
  const msgs = buildAnnouncements(AFI_IPV4, attrs, a.local, prefixes(a.count));
  const all = Buffer.concat([...msgs, buildEndOfRib(AFI_IPV4)]);
  const bgpId = parseAddress(a.local)!.words[0]!;
  const r = await RawBgp.connect(a.target, 179, a.local);
  await r.establish({ localAs: asn, holdTime: 90, bgpId, families: [{ afi: 1, safi: 1 }] });
  process.stdout.write(JSON.stringify({ event: 'established', t: Date.now(), messages: msgs.length, bytes: all.length }) + '\n');
  r.sock.write(all, () => process.stdout.write(JSON.stringify({ event: 'sent', t: Date.now() }) + '\n'));
  const ka = setInterval(() => r.send(KEEPALIVE), 3000);
  // Drain whatever the receiver sends (its own UPDATEs, keepalives).
  void (async () => { for (;;) { const e = await r.next(3_600_000); if (e.type === 'closed') break; } })();
  process.stdin.resume();
  process.stdin.on('end', () => { clearInterval(ka); r.close(); process.exit(0); });
}

void main();
