/**
 * Pure logic of the agent: the calculation graph (what this host needs), rule rendering, and the
 * nft difference. No kernel here; the same paths are exercised for real in agent.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CalcGraph } from '../../node/agent/calc.js';
import { RulesetRenderer } from '../../node/agent/render/ruleset.js';
import { renderRule } from '../../node/agent/render/rules.js';
import { diffScript, fullScript } from '../../node/agent/render/script.js';
import { ipSetName } from '../../node/agent/render/names.js';
import { parseRules } from '../../node/agent/model.js';
import { keys } from '../../src/datastore/keys.js';
import { CALICO_TABLE, checkScriptScope } from '../../src/dataplane/nftables.js';
import { createLogger } from '../../src/log.js';
import { Writable } from 'node:stream';

const warnings: string[] = [];
const log = createLogger({ level: 'warn', stream: new Writable({ write(c, _e, cb) { warnings.push(String(c)); cb(); } }) });

function ep(g: CalcGraph, node: string, id: string, ip: string, profiles: string[], labels: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  g.onUpdate(keys.workloadEndpoint(node, 'docker', id, id), JSON.stringify({
    state: 'active', name: `cali${id}`.slice(0, 15), mac: null, profile_ids: profiles, ipv4_nets: [`${ip}/32`], ipv6_nets: [], labels, ...extra,
  }));
}

function profile(g: CalcGraph, name: string, inbound: unknown[] = [{ action: 'allow', src_tag: name }], outbound: unknown[] = [{ action: 'allow' }], labels?: Record<string, string>) {
  g.onUpdate(keys.profileRules(name), JSON.stringify({ inbound_rules: inbound, outbound_rules: outbound }));
  g.onUpdate(keys.profileTags(name), JSON.stringify([name]));
  if (labels) g.onUpdate(keys.profileLabels(name), JSON.stringify(labels));
}

test('calc: local endpoints only, tag sets span all hosts, only referenced sets exist', () => {
  const g = new CalcGraph('h1', log);
  profile(g, 'PROF_A_C_E');
  profile(g, 'PROF_B');
  profile(g, 'UNUSED');
  ep(g, 'h1', 'aaaa', '10.65.0.1', ['PROF_A_C_E']);
  ep(g, 'h1', 'bbbb', '10.65.0.2', ['PROF_B']);
  ep(g, 'h1', 'cccc', '10.65.0.3', ['PROF_A_C_E']);
  ep(g, 'h2', 'eeee', '10.65.0.5', ['PROF_A_C_E']);
  ep(g, 'h2', 'ffff', '10.65.0.6', ['UNUSED']);
  const d = g.recompute();
  assert.deepEqual([...d.localEndpoints.keys()].sort(), ['caliaaaa', 'calibbbb', 'calicccc']);
  assert.deepEqual([...d.profiles.keys()].sort(), ['PROF_A_C_E', 'PROF_B'], 'only profiles used on this host');
  assert.deepEqual([...d.ipSets.keys()].sort(), ['tag:PROF_A_C_E', 'tag:PROF_B']);
  assert.deepEqual([...d.ipSets.get('tag:PROF_A_C_E')!.members4].sort(), ['10.65.0.1', '10.65.0.3', '10.65.0.5'], 'E on another host is a member');
  assert.deepEqual([...d.ipSets.get('tag:PROF_B')!.members4], ['10.65.0.2']);
});

test('calc: unchanged views keep their identity; a change touches only what it must', () => {
  const g = new CalcGraph('h1', log);
  profile(g, 'P1');
  profile(g, 'P2');
  for (let i = 0; i < 20; i++) ep(g, 'h1', `e${i}`, `10.65.1.${i + 1}`, [i % 2 ? 'P1' : 'P2']);
  const d1 = g.recompute();
  const d1b = g.recompute();
  for (const [k, v] of d1.localEndpoints) assert.equal(d1b.localEndpoints.get(k), v);
  ep(g, 'h1', 'e3', '10.65.1.4', ['P1', 'P2']);
  const d2 = g.recompute();
  let changed = 0;
  for (const [k, v] of d2.localEndpoints) if (d1.localEndpoints.get(k) !== v) changed++;
  assert.equal(changed, 1, 'one endpoint view replaced');
  assert.equal(d2.profiles.get('P1'), d1.profiles.get('P1'), 'profile views untouched');
  assert.notEqual(d2.ipSets.get('tag:P2'), d1.ipSets.get('tag:P2'), 'the P2 set gained e3');
  assert.equal(d2.ipSets.get('tag:P1'), d1.ipSets.get('tag:P1'), 'the P1 set did not change');
  assert.ok(d2.ipSets.get('tag:P2')!.members4.has('10.65.1.4'));

  // Render + diff: e3 moves to the class (P1, P2): two new class chains, its map entries, the
  // set element; nothing else is rewritten.
  const r = new RulesetRenderer();
  const rs1 = r.render(d1);
  const rs2 = r.render(d2);
  assert.equal(rs1.chains.get('fw-P1'), r.render(d1).chains.get('fw-P1'), 'class chains are shared and memoised');
  const diff = diffScript(rs1, rs2, CALICO_TABLE);
  assert.equal(diff.needsRebuild, false);
  assert.equal(diff.changedChains, 2);
  assert.deepEqual(diff.commands.filter((c) => /^(flush|add chain)/.test(c)), ['add chain inet calico fw-P1/P2', 'add chain inet calico tw-P1/P2']);
  assert.ok(diff.commands.includes(`add element inet calico ${ipSetName('tag:P2', 4)} { 10.65.1.4 }`));
  assert.ok(diff.commands.includes('add element inet calico from-wl { "calie3" : goto fw-P1/P2 }'), diff.commands.join('\n'));
  assert.ok(diff.commands.includes('delete element inet calico from-wl { "calie3" }'));
  checkScriptScope(diff.commands, CALICO_TABLE);
  checkScriptScope(fullScript(rs2, CALICO_TABLE), CALICO_TABLE);

  // A profile rule change re-renders that profile's chains only.
  profile(g, 'P1', [{ action: 'allow', protocol: 'tcp', dst_ports: [80] }]);
  const d3 = g.recompute();
  const rs3 = r.render(d3);
  const diff3 = diffScript(rs2, rs3, CALICO_TABLE);
  assert.deepEqual(diff3.commands.filter((c) => c.startsWith('flush')), ['flush chain inet calico pri-P1'], 'pro-P1 rules are unchanged, so not rewritten');
  assert.ok(diff3.commands.some((c) => c.startsWith(`delete set inet calico ${ipSetName('tag:P1', 4)}`)), 'P1 tag set no longer referenced');

  // Removing the last endpoint of a class deletes the class chains, after the map entries
  // that point at them; its anti-spoofing elements go too.
  g.onUpdate(keys.workloadEndpoint('h1', 'docker', 'e3', 'e3'), undefined);
  const rs4 = r.render(g.recompute());
  const c4 = diffScript(rs3, rs4, CALICO_TABLE).commands;
  const mapDel = c4.indexOf('delete element inet calico from-wl { "calie3" }');
  const chainDel = c4.indexOf('delete chain inet calico fw-P1/P2');
  assert.ok(mapDel >= 0 && chainDel > mapDel, c4.join('\n'));
  assert.ok(c4.includes('delete element inet calico wl-addr4 { "calie3" . 10.65.1.4 }'), c4.join('\n'));
});

test('calc: policies select by labels (own, profile, tags), order by `order` then name, honour types', () => {
  const g = new CalcGraph('h1', log);
  profile(g, 'web', undefined, undefined, { tier: 'frontend' });
  ep(g, 'h1', 'w1', '10.65.2.1', ['web'], { role: 'api' });
  ep(g, 'h1', 'w2', '10.65.2.2', ['web'], { role: 'db', tier: 'backend' });
  const pol = (name: string, v: Record<string, unknown>) => g.onUpdate(keys.policy(name), JSON.stringify(v));
  pol('b-frontend', { order: 10, selector: "tier == 'frontend'", inbound_rules: [{ action: 'allow' }], outbound_rules: [] });
  pol('a-frontend', { order: 10, selector: "tier == 'frontend'", inbound_rules: [{ action: 'deny' }], outbound_rules: [] });
  pol('first', { order: 1, selector: 'has(web)', inbound_rules: [], outbound_rules: [{ action: 'allow' }] });
  pol('noorder', { selector: 'all()', inbound_rules: [{ action: 'allow' }], outbound_rules: [{ action: 'allow' }] });
  const d = g.recompute();
  const w1 = d.localEndpoints.get('caliw1')!;
  const w2 = d.localEndpoints.get('caliw2')!;
  assert.deepEqual(w1.ingressPolicies, ['a-frontend', 'b-frontend', 'noorder'], 'profile label tier=frontend; ties by name; no order last');
  assert.deepEqual(w1.egressPolicies, ['first', 'noorder'], 'egress-only policy (inferred from its rules); has(tag) matches');
  assert.deepEqual(w2.ingressPolicies, ['noorder'], 'endpoint label tier=backend beats the profile label');
  pol('a-frontend', { order: 20, selector: "tier == 'frontend'", inbound_rules: [{ action: 'deny' }], outbound_rules: [] });
  const d2 = g.recompute();
  assert.deepEqual(d2.localEndpoints.get('caliw1')!.ingressPolicies, ['b-frontend', 'a-frontend', 'noorder'], 'a new order re-sorts');
  assert.equal(d2.localEndpoints.get('caliw2'), w2, 'an endpoint the policy does not select is untouched');
});

test('calc: selector sets follow label changes on every host; invalid endpoints are ignored', () => {
  const g = new CalcGraph('h1', log);
  profile(g, 'db', [{ action: 'allow', src_selector: "role == 'web'" }], [{ action: 'allow' }]);
  ep(g, 'h1', 'd1', '10.65.3.1', ['db']);
  ep(g, 'h2', 'x1', '10.65.3.2', [], { role: 'web' });
  ep(g, 'h3', 'x2', '10.65.3.3', [], { role: 'batch' });
  g.onUpdate(keys.hostEndpoint('h3', 'eth0'), JSON.stringify({ expected_ipv4_addrs: ['172.16.0.3'], expected_ipv6_addrs: [], labels: { role: 'web' }, profile_ids: [] }));
  const id = `sel:role == "web"`;
  let d = g.recompute();
  assert.deepEqual([...d.ipSets.get(id)!.members4].sort(), ['10.65.3.2', '172.16.0.3']);
  ep(g, 'h3', 'x2', '10.65.3.3', [], { role: 'web' });
  d = g.recompute();
  assert.deepEqual([...d.ipSets.get(id)!.members4].sort(), ['10.65.3.2', '10.65.3.3', '172.16.0.3']);
  g.onUpdate(keys.workloadEndpoint('h2', 'docker', 'x1', 'x1'), '{"state":"bogus"}');
  d = g.recompute();
  assert.deepEqual([...d.ipSets.get(id)!.members4].sort(), ['10.65.3.3', '172.16.0.3'], 'an invalid endpoint counts as deleted');
  assert.ok(warnings.some((w) => w.includes('invalid datastore value')));
});

test('calc: config (host overrides global), pools and node addresses', () => {
  const g = new CalcGraph('h1', log);
  g.onUpdate(keys.felixConfig('DefaultEndpointToHostAction'), 'ACCEPT');
  g.onUpdate(keys.hostConfig('h1', 'DefaultEndpointToHostAction'), 'return');
  g.onUpdate(keys.hostConfig('h2', 'DefaultEndpointToHostAction'), 'DROP');
  g.onUpdate(keys.pool('10.65.0.0/16', 4), JSON.stringify({ cidr: '10.65.0.0/16', masquerade: true, ipip: 'tunl0', ipip_mode: 'always' }));
  g.onUpdate(keys.pool('10.66.0.0/16', 4), JSON.stringify({ cidr: '10.66.0.0/16' }));
  g.onUpdate(keys.birdIp('h1'), '172.17.8.101');
  g.onUpdate(keys.birdIp('h2'), 'None');
  g.onUpdate(keys.bgpHostIpV4('h3'), '172.17.8.103');
  const d = g.recompute();
  assert.equal(d.config.endpointToHostAction, 'RETURN');
  assert.deepEqual(d.pools.all4, ['10.65.0.0/16', '10.66.0.0/16']);
  assert.deepEqual(d.pools.masq4, ['10.65.0.0/16']);
  assert.equal(d.pools.ipip, true);
  assert.deepEqual(d.nodes.ips4, ['172.17.8.101', '172.17.8.103']);
});

test('rules: ports, ICMP, nets by family, negations, tags and selectors; untranslatable rules drop', () => {
  const r = (rule: unknown, owner: 'profile' | 'policy' = 'profile') => renderRule(parseRules([rule], 'r')[0]!, owner);
  assert.deepEqual(r({ action: 'allow', protocol: 'tcp', dst_ports: [80, 443, '1000:2000'] }), [
    'meta l4proto 6 th dport { 80, 443 } meta mark set meta mark | 0x00010000 return',
    'meta l4proto 6 th dport 1000-2000 meta mark set meta mark | 0x00010000 return',
  ], 'ports: one rule for the single ports, one per range (no interval sets)');
  assert.equal(r({ action: 'allow', protocol: 'udp', src_ports: [1, '5:6'], dst_ports: [53, '100:200'] }).length, 4, 'cross product of source and destination groups');
  assert.deepEqual(r({ action: 'deny', protocol: 'tcp', '!dst_ports': [22, '6000:6010'] }), ['meta l4proto 6 th dport != 22 th dport != 6000-6010 drop'], 'negated groups all hold');
  assert.deepEqual(r({ action: 'deny', protocol: 'icmp', icmp_type: 8, icmp_code: 0 }), ['meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 drop']);
  assert.deepEqual(r({ action: 'allow', src_nets: ['10.0.0.0/8', '10.1.0.0/16', 'fd00::/64'] }), [
    'meta nfproto ipv4 ip saddr 10.0.0.0/8 meta mark set meta mark | 0x00010000 return',
    'meta nfproto ipv6 ip6 saddr fd00::/64 meta mark set meta mark | 0x00010000 return',
  ], 'nets covered by others are dropped; one value needs no set');
  assert.deepEqual(r({ action: 'deny', '!dst_nets': ['10.0.0.0/8', '192.168.0.1/32'], ip_version: 4 }), [
    'meta nfproto ipv4 ip daddr != { 10.0.0.0/8, 192.168.0.1 } drop',
  ]);
  assert.deepEqual(r({ action: 'allow', src_net: '10.0.0.0/8', dst_net: 'fd00::/64' }), [], 'v4 source and v6 destination never match');
  assert.deepEqual(r({ action: 'allow', ip_version: 6, '!src_tag': 'x' }), [`meta nfproto ipv6 ip6 saddr != @${ipSetName('tag:x', 6)} meta mark set meta mark | 0x00010000 return`]);
  assert.equal(r({ action: 'allow', dst_selector: "a == 'b'" }).length, 2, 'a selector is matched in both families');
  assert.deepEqual(r({ action: 'next-tier' }, 'policy'), ['meta mark set meta mark | 0x00020000 return']);
  assert.deepEqual(r({ action: 'log', log_prefix: 'x"; drop' }), ['log prefix "x drop: "'], 'log prefix cannot break out of its quotes');
  assert.deepEqual(r({ action: 'allow', protocol: 'udp', '!src_ports': [53] }), ['meta l4proto 17 th sport != 53 meta mark set meta mark | 0x00010000 return']);
  assert.deepEqual(r({ protocol: 'tcp' }), ['meta l4proto 6 meta mark set meta mark | 0x00010000 return'], 'no action means allow');
  for (const bad of [{ action: 'allow', dst_ports: [80] }, { action: 'allow', protocol: 'tcp', dst_ports: [70000] }, { action: 'allow', src_selector: '((' }, { action: 'allow', src_net: 'nope' }, { action: 'bogus' }]) {
    assert.deepEqual(r(bad), ['drop'], `fail closed: ${JSON.stringify(bad)}`);
  }
});
