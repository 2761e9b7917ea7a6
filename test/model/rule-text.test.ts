import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseRuleWords, formatRule, formatRuleList, rulesEqual, parsePorts, parseIcmpValue, parseRuleCidr, validateTag,
  MSG_INVALID_PORT, MSG_INVALID_ICMP, MSG_INVALID_CIDR, MSG_INVALID_TAG,
} from '../../src/model/rule-text.js';
import { ValidationError } from '../../src/errors.js';
import { defaultProfile, StoredRule } from '../../src/model/stored.js';

const parse = (text: string): StoredRule => parseRuleWords(text.split(' '));

/** Asserts a ValidationError with exactly this message and field. */
function assertRejects(text: string, message: string, field: string): void {
  assert.throws(() => parse(text), (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError for "${text}"`);
    assert.equal(err.message, message, text);
    assert.equal(err.field, field, text);
    return true;
  });
}

test('action only', () => {
  assert.deepEqual(parse('allow'), { action: 'allow' });
  assert.deepEqual(parse('deny'), { action: 'deny' });
});

test('no protocol: from/to with tag and CIDR', () => {
  assert.deepEqual(parse('allow from tag WEB'), { action: 'allow', src_tag: 'WEB' });
  assert.deepEqual(parse('deny to 10.1.0.0/16'), { action: 'deny', dst_net: '10.1.0.0/16' });
  assert.deepEqual(parse('allow from tag A 10.0.0.0/8 to tag B 192.168.0.0/16'), {
    action: 'allow', src_tag: 'A', src_net: '10.0.0.0/8', dst_tag: 'B', dst_net: '192.168.0.0/16',
  });
  assert.deepEqual(parse('allow to tag B'), { action: 'allow', dst_tag: 'B' });
  // The grammar makes every part of a clause optional, so a bare `from` is legal and adds nothing.
  assert.deepEqual(parse('allow from'), { action: 'allow' });
});

test('tcp and udp: ports, tag and CIDR on both sides', () => {
  assert.deepEqual(parse('allow tcp'), { action: 'allow', protocol: 'tcp' });
  assert.deepEqual(parse('allow udp to ports 53'), { action: 'allow', protocol: 'udp', dst_ports: [53] });
  assert.deepEqual(parse('deny tcp from ports 1024-65535 tag CLIENT 10.0.0.0/8 to ports 80,443 tag WEB 10.2.0.0/16'), {
    action: 'deny', protocol: 'tcp',
    src_ports: ['1024:65535'], src_tag: 'CLIENT', src_net: '10.0.0.0/8',
    dst_ports: [80, 443], dst_tag: 'WEB', dst_net: '10.2.0.0/16',
  });
  assert.deepEqual(parse('allow udp from ports 5000:5010'), { action: 'allow', protocol: 'udp', src_ports: ['5000:5010'] });
});

test('icmp: type, type+code, and from/to with tag and CIDR', () => {
  assert.deepEqual(parse('allow icmp'), { action: 'allow', protocol: 'icmp' });
  assert.deepEqual(parse('allow icmp type 8'), { action: 'allow', protocol: 'icmp', icmp_type: 8 });
  assert.deepEqual(parse('deny icmp type 3 code 4 from tag A 10.0.0.0/8 to tag B 10.1.0.0/16'), {
    action: 'deny', protocol: 'icmp', icmp_type: 3, icmp_code: 4,
    src_tag: 'A', src_net: '10.0.0.0/8', dst_tag: 'B', dst_net: '10.1.0.0/16',
  });
  assert.deepEqual(parse('allow icmp type 0 code 0'), { action: 'allow', protocol: 'icmp', icmp_type: 0, icmp_code: 0 });
  assert.deepEqual(parse('allow icmp type 254 code 254'), { action: 'allow', protocol: 'icmp', icmp_type: 254, icmp_code: 254 });
  assert.deepEqual(parse('allow icmp from tag A'), { action: 'allow', protocol: 'icmp', src_tag: 'A' });
});

test('CIDRs: bare (v0.4) and `cidr <CIDR>` (v0.5.2) spellings, normalised', () => {
  assert.deepEqual(parse('allow from cidr 10.1.2.3/8'), { action: 'allow', src_net: '10.0.0.0/8' });
  assert.deepEqual(parse('allow from 10.1.2.3/8'), { action: 'allow', src_net: '10.0.0.0/8' });
  assert.deepEqual(parse('allow to 192.168.1.5'), { action: 'allow', dst_net: '192.168.1.5/32' }, 'an address is a host route');
  assert.deepEqual(parse('allow tcp to ports 80 cidr fd00:0:0:0::1/64'), {
    action: 'allow', protocol: 'tcp', dst_ports: [80], dst_net: 'fd00::/64',
  });
  assert.deepEqual(parse('allow from 2001:db8::1 to 2001:db8::/32'), {
    action: 'allow', src_net: '2001:db8::1/128', dst_net: '2001:db8::/32',
  });
});

test('parts of a clause may come in any order; clauses too', () => {
  const expected = { action: 'allow', protocol: 'tcp', src_ports: [1], src_tag: 'T', src_net: '10.0.0.0/8', dst_ports: [2] };
  assert.deepEqual(parse('allow tcp from 10.0.0.0/8 tag T ports 1 to ports 2'), expected);
  assert.deepEqual(parse('allow tcp to ports 2 from tag T cidr 10.0.0.0/8 ports 1'), expected);
});

test('words may arrive as one quoted argument or with stray spaces', () => {
  assert.deepEqual(parseRuleWords(['allow tcp to ports 80']), { action: 'allow', protocol: 'tcp', dst_ports: [80] });
  assert.deepEqual(parseRuleWords(['allow', ' tcp ', 'to', 'ports', '80']), { action: 'allow', protocol: 'tcp', dst_ports: [80] });
});

test('ports: lists, ranges with - or :, normalised; bounds checked', () => {
  assert.deepEqual(parsePorts('80'), [80]);
  assert.deepEqual(parsePorts('0,65535'), [0, 65535]);
  assert.deepEqual(parsePorts('80,443,8000-8080,9000:9001,010'), [80, 443, '8000:8080', '9000:9001', 10]);
  assert.deepEqual(parsePorts('5-5'), ['5:5'], 'min == max is allowed');
  const bad: Array<[string, string]> = [
    ['65536', `${MSG_INVALID_PORT} Port 65536 is above 65535.`],
    ['80,70000', `${MSG_INVALID_PORT} Port 70000 is above 65535 (in '80,70000').`],
    ['1-70000', `${MSG_INVALID_PORT} Port 70000 is above 65535.`],
    ['90-80', `${MSG_INVALID_PORT} The range '90-80' has its minimum above its maximum.`],
    ['90:80,1', `${MSG_INVALID_PORT} The range '90:80' has its minimum above its maximum (in '90:80,1').`],
    ['http', `${MSG_INVALID_PORT} 'http' is not a port (0-65535) or a range (a:b or a-b).`],
    ['-1', `${MSG_INVALID_PORT} '-1' is not a port (0-65535) or a range (a:b or a-b).`],
    ['1-2-3', `${MSG_INVALID_PORT} '1-2-3' is not a port (0-65535) or a range (a:b or a-b).`],
    ['80,,81', `${MSG_INVALID_PORT} An empty entry is not a port (0-65535) or a range (a:b or a-b) (in '80,,81').`],
    ['80,', `${MSG_INVALID_PORT} An empty entry is not a port (0-65535) or a range (a:b or a-b) (in '80,').`],
    ['8 0', `${MSG_INVALID_PORT} '8 0' is not a port (0-65535) or a range (a:b or a-b).`],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parsePorts(text, 'dst_ports'), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.message, message, text);
      assert.equal(err.field, 'dst_ports');
      return true;
    });
  }
  assertRejects('allow tcp to ports 99999', `${MSG_INVALID_PORT} Port 99999 is above 65535.`, 'dst_ports');
  assertRejects('allow udp from ports 2-1', `${MSG_INVALID_PORT} The range '2-1' has its minimum above its maximum.`, 'src_ports');
});

test('ports are only valid with tcp or udp', () => {
  assertRejects('allow icmp from ports 80', 'Ports are not valid with protocol icmp', 'src_ports');
  assertRejects('allow icmp type 8 to ports 80', 'Ports are not valid with protocol icmp', 'dst_ports');
  assertRejects('allow to ports 80', 'Ports are not valid without a protocol', 'dst_ports');
  assert.throws(() => parse('allow from ports 80'), (err: unknown) =>
    err instanceof ValidationError && /tcp or udp/.test(err.hint ?? ''));
});

test('ICMP type and code: 0-254 integers, code needs type, only after icmp', () => {
  assertRejects('allow icmp type 255', `${MSG_INVALID_ICMP} ICMP type '255' must be an integer from 0 to 254.`, 'icmp_type');
  assertRejects('allow icmp type 8 code 255', `${MSG_INVALID_ICMP} ICMP code '255' must be an integer from 0 to 254.`, 'icmp_code');
  assertRejects('allow icmp type -1', `${MSG_INVALID_ICMP} ICMP type '-1' must be an integer from 0 to 254.`, 'icmp_type');
  assertRejects('allow icmp type echo', `${MSG_INVALID_ICMP} ICMP type 'echo' must be an integer from 0 to 254.`, 'icmp_type');
  assertRejects('allow icmp type 1.5', `${MSG_INVALID_ICMP} ICMP type '1.5' must be an integer from 0 to 254.`, 'icmp_type');
  assertRejects('allow icmp code 3',
    'Invalid rule "allow icmp code 3": an ICMP code needs a type first: icmp type <TYPE> code <CODE>.', 'rule');
  assertRejects('allow tcp type 3',
    'Invalid rule "allow tcp type 3": "type" (ICMP type and code) is only valid after the protocol icmp.', 'rule');
  assertRejects('allow type 3',
    'Invalid rule "allow type 3": "type" (ICMP type and code) is only valid after the protocol icmp.', 'rule');
  assertRejects('allow icmp from tag A type 8',
    'Invalid rule "allow icmp from tag A type 8": unexpected "type" at word 6, expected ports, tag, cidr, a CIDR, "to" or the end of the rule' +
    ' (ICMP type and code go right after icmp, before from/to).', 'rule');
  assert.equal(parseIcmpValue('254', 'code'), 254);
});

test('CIDRs and tags are validated with the originals\' messages', () => {
  assertRejects('allow from 10.0.0.0/33', `${MSG_INVALID_CIDR} '10.0.0.0/33' is not a valid CIDR.`, 'src_net');
  assertRejects('allow to cidr 300.1.1.1', `${MSG_INVALID_CIDR} '300.1.1.1' is not a valid CIDR.`, 'dst_net');
  assertRejects('allow from WEB', `${MSG_INVALID_CIDR} 'WEB' is not a valid CIDR.`, 'src_net');
  assertRejects('allow from tag a/b', `${MSG_INVALID_TAG} 'a/b' is not a valid tag.`, 'src_tag');
  assertRejects('allow to tag a!b', `${MSG_INVALID_TAG} 'a!b' is not a valid tag.`, 'dst_tag');
  assert.equal(validateTag('Az09_.-'), 'Az09_.-');
  assert.equal(parseRuleCidr('10.9.8.7/24'), '10.9.8.0/24');
});

test('grammar errors name the rule and the word', () => {
  const cases: Array<[string, string]> = [
    ['', 'Invalid rule "": a rule starts with allow or deny.'],
    ['reject', 'Invalid rule "reject": unknown action "reject", a rule starts with allow or deny.'],
    ['Allow', 'Invalid rule "Allow": unknown action "Allow", a rule starts with allow or deny.'],
    ['allow tcp frm', 'Invalid rule "allow tcp frm": unexpected "frm" at word 3, expected "from", "to" or the end of the rule.'],
    ['allow sctp', 'Invalid rule "allow sctp": unexpected "sctp" at word 2, expected tcp, udp, icmp, "from", "to" or the end of the rule.'],
    ['allow tcp udp', 'Invalid rule "allow tcp udp": unexpected "udp" at word 3, expected "from", "to" or the end of the rule.'],
    ['allow from tag', 'Invalid rule "allow from tag": "tag" must be followed by a tag name.'],
    ['allow tcp to ports', 'Invalid rule "allow tcp to ports": "ports" must be followed by a port list such as 80,443 or 8000:8080.'],
    ['allow to cidr', 'Invalid rule "allow to cidr": "cidr" must be followed by a CIDR such as 10.0.0.0/8.'],
    ['allow icmp type', 'Invalid rule "allow icmp type": "type" must be followed by an ICMP type (0-254).'],
    ['allow icmp type 1 code', 'Invalid rule "allow icmp type 1 code": "code" must be followed by an ICMP code (0-254).'],
    ['allow to tag A to tag B', 'Invalid rule "allow to tag A to tag B": "to" appears twice.'],
    ['allow from tag A tag B', 'Invalid rule "allow from tag A tag B": the from clause has more than one tag.'],
    ['allow to 10.0.0.0/8 cidr 10.1.0.0/16', 'Invalid rule "allow to 10.0.0.0/8 cidr 10.1.0.0/16": the to clause has more than one CIDR.'],
    ['allow tcp to ports 1 ports 2', 'Invalid rule "allow tcp to ports 1 ports 2": the to clause has more than one ports list.'],
    ['allow from tag A deny', 'Invalid rule "allow from tag A deny": unexpected "deny" at word 5, expected ports, tag, cidr, a CIDR, "to" or the end of the rule.'],
    ['allow to tag A tcp', 'Invalid rule "allow to tag A tcp": unexpected "tcp" at word 5, expected ports, tag, cidr, a CIDR or the end of the rule.'],
    ['allow from 10.0.0.0/8 to fd00::/8',
      'Invalid rule "allow from 10.0.0.0/8 to fd00::/8": the source 10.0.0.0/8 is IPv4 but the destination fd00::/8 is IPv6, so the rule could never match.'],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseRuleWords(text === '' ? [] : text.split(' ')), (err: unknown) => {
      assert.ok(err instanceof ValidationError, text);
      assert.equal(err.message, message);
      assert.equal(err.field, 'rule');
      assert.ok(err.hint?.startsWith('a rule looks like'), 'the hint shows the grammar');
      return true;
    });
  }
});

test('formatRule prints in the originals\' order with the bare CIDR', () => {
  assert.equal(formatRule({ action: 'allow' }), 'allow');
  assert.equal(formatRule({}), 'allow', 'an absent action is allow');
  assert.equal(formatRule({ action: 'allow', src_tag: 'WEB' }), 'allow from tag WEB');
  // Keys deliberately out of order: the printer imposes the order.
  assert.equal(formatRule({
    dst_net: '10.2.0.0/16', src_net: '10.0.0.0/8', dst_tag: 'B', src_ports: [1, '5:6'], protocol: 'tcp',
    dst_ports: [80], src_tag: 'A', action: 'deny',
  }), 'deny tcp from ports 1,5:6 tag A 10.0.0.0/8 to ports 80 tag B 10.2.0.0/16');
  assert.equal(formatRule({ icmp_code: 0, icmp_type: 8, protocol: 'icmp', action: 'allow', dst_tag: 'X' }),
    'allow icmp type 8 code 0 to tag X');
  assert.equal(formatRule({ action: 'allow', protocol: 6 }), 'allow 6');
});

test('formatRule shows v1-only fields readably', () => {
  assert.equal(formatRule({
    action: 'deny', ip_version: 6, protocol: 'tcp', '!src_ports': [22], src_selector: 'role == "db"',
    '!src_selector': "has(debug)", '!dst_tag': 'X', dst_nets: ['fd00::/8', 'fd01::/16'], '!dst_net': 'fd00:1::/32',
  }), `deny ipv6 tcp from not ports 22 selector 'role == "db"' not selector "has(debug)" ` +
    'to not tag X nets fd00::/8,fd01::/16 not fd00:1::/32');
  assert.equal(formatRule({ action: 'allow', '!protocol': 'udp', '!icmp_type': 3, '!icmp_code': 1, '!src_nets': ['10.0.0.0/8'] }),
    'allow not udp not type 3 not code 1 from not nets 10.0.0.0/8');
  assert.equal(formatRule({ action: 'log', log_prefix: 'drop', ip_version: 4 }), 'log prefix "drop" ipv4');
  assert.equal(formatRule({ action: 'next-tier', dst_selector: 'a in {"x"}' }), 'next-tier to selector \'a in {"x"}\'');
});

test('parse -> format -> parse round trips, and the printed text is a fixed point', () => {
  const texts = [
    'allow', 'deny', 'allow from tag WEB', 'deny to tag X 10.0.0.0/8', 'allow tcp', 'allow udp to ports 53',
    'allow tcp from ports 1,2:3 tag A 10.0.0.0/8 to ports 80,443 tag B 10.1.0.0/16',
    'allow icmp type 8', 'deny icmp type 3 code 1 from tag A to 2001:db8::/32',
    'allow from 10.1.2.3 to cidr 10.4.5.6/16', 'deny tcp to cidr 10.0.0.1/24 tag T ports 1-2',
  ];
  for (const text of texts) {
    const rule = parse(text);
    const printed = formatRule(rule);
    const reparsed = parse(printed);
    assert.deepEqual(reparsed, rule, text);
    assert.ok(rulesEqual(reparsed, rule));
    assert.equal(formatRule(reparsed), printed, `${text}: printing is stable`);
  }
  assert.equal(formatRule(parse('deny tcp to cidr 10.0.0.1/24 tag T ports 1-2')), 'deny tcp to ports 1:2 tag T 10.0.0.0/24');
});

test('formatRuleList: heading then " %3d %s" lines', () => {
  const profile = defaultProfile('WEB');
  assert.equal(formatRuleList('Inbound', profile.rules.inbound_rules), 'Inbound rules:\n   1 allow from tag WEB');
  assert.equal(formatRuleList('Outbound', profile.rules.outbound_rules), 'Outbound rules:\n   1 allow');
  assert.equal(formatRuleList('Inbound', []), 'Inbound rules:');
  const many: StoredRule[] = Array.from({ length: 1000 }, (_, i) => ({ action: i % 2 ? 'deny' : 'allow' }));
  const lines = formatRuleList('Outbound', many).split('\n');
  assert.equal(lines.length, 1001);
  assert.equal(lines[1], '   1 allow');
  assert.equal(lines[10], '  10 deny');
  assert.equal(lines[100], ' 100 deny');
  assert.equal(lines[1000], ' 1000 deny', 'like %3d, wider numbers are not cut');
});

test('rulesEqual: exact match in any key order; absent action means allow', () => {
  const a = parse('allow tcp from tag A to ports 80,1:2');
  const b: StoredRule = { dst_ports: [80, '1:2'], src_tag: 'A', protocol: 'tcp', action: 'allow' };
  assert.equal(rulesEqual(a, b), true);
  assert.equal(rulesEqual(a, { ...b, dst_ports: ['1:2', 80] }), false, 'port order is part of the rule');
  assert.equal(rulesEqual(a, { ...b, dst_ports: [80] }), false);
  assert.equal(rulesEqual(a, { ...b, dst_ports: ['80', '1:2'] }), false, '80 and "80" differ, as in the original');
  assert.equal(rulesEqual(a, { ...b, action: 'deny' }), false);
  assert.equal(rulesEqual(a, { ...b, src_net: '10.0.0.0/8' }), false, 'an extra key differs');
  assert.equal(rulesEqual(a, { ...b, src_net: undefined }), true, 'an undefined key is absent');
  assert.equal(rulesEqual({ src_tag: 'A' }, { action: 'allow', src_tag: 'A' }), true);
  assert.equal(rulesEqual({ src_tag: 'A' }, { action: 'deny', src_tag: 'A' }), false);
  assert.equal(rulesEqual({ action: 'allow' }, { action: 'allow', protocol: 'tcp' }), false);
  assert.equal(rulesEqual({ src_nets: ['10.0.0.0/8'] }, { src_nets: ['10.0.0.0/8'] }), true);
  const list = defaultProfile('P').rules.inbound_rules;
  assert.ok(list.some((r) => rulesEqual(r, parse('allow from tag P'))), 'rule remove finds the default rule');
  assert.ok(!list.some((r) => rulesEqual(r, parse('allow from tag Q'))));
});
