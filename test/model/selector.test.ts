import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSelector, validateSelector, canonicalSelector, MAX_LABEL_KEY_LENGTH } from '../../src/model/selector.js';
import { ValidationError } from '../../src/errors.js';

const sel = (text: string) => parseSelector(text);
const matches = (text: string, labels: Record<string, string>) => parseSelector(text).evaluate(labels);

/** Asserts that parsing fails with exactly this message (after the `invalid selector "<text>": ` prefix). */
function assertSyntaxError(text: string, problem: string): void {
  assert.throws(() => parseSelector(text), (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError for ${JSON.stringify(text)}`);
    assert.equal(err.message, `invalid selector ${JSON.stringify(text)}: ${problem}`);
    assert.equal(err.field, 'selector');
    assert.ok(err.hint && err.hint.includes('has('), 'the hint shows the syntax');
    return true;
  });
}

test('== matches only when the label is present with that value', () => {
  assert.equal(matches('role == "db"', { role: 'db' }), true);
  assert.equal(matches('role == "db"', { role: 'web' }), false);
  assert.equal(matches('role == "db"', {}), false);
  assert.equal(matches("role == 'db'", { role: 'db' }), true, 'single quotes work too');
  assert.equal(matches('role == ""', { role: '' }), true, 'the empty value is a value');
  assert.equal(matches('role == ""', {}), false);
});

test('!= and not in also match endpoints without the label', () => {
  assert.equal(matches('role != "db"', { role: 'web' }), true);
  assert.equal(matches('role != "db"', { role: 'db' }), false);
  assert.equal(matches('role != "db"', {}), true, 'missing label satisfies !=');
  assert.equal(matches('role not in {"db", "web"}', { role: 'cache' }), true);
  assert.equal(matches('role not in {"db", "web"}', { role: 'web' }), false);
  assert.equal(matches('role not in {"db", "web"}', { other: 'db' }), true, 'missing label satisfies not in');
  assert.equal(matches('role not in {}', {}), true);
  assert.equal(matches('role not in {}', { role: 'x' }), true, 'nothing is in the empty set');
});

test('in needs the label present with one of the values; the empty set matches nothing', () => {
  assert.equal(matches('env in {"prod", "staging"}', { env: 'staging' }), true);
  assert.equal(matches('env in {"prod", "staging"}', { env: 'dev' }), false);
  assert.equal(matches('env in {"prod", "staging"}', {}), false);
  assert.equal(matches('env in {}', { env: '' }), false);
  assert.equal(matches("env in {'a'}", { env: 'a' }), true);
});

test('has() and !has() test presence regardless of value', () => {
  assert.equal(matches('has(debug)', { debug: '' }), true);
  assert.equal(matches('has(debug)', { debug: 'false' }), true);
  assert.equal(matches('has(debug)', { other: 'x' }), false);
  assert.equal(matches('!has(debug)', {}), true);
  assert.equal(matches('!has(debug)', { debug: 'x' }), false);
});

test('inherited object properties are not labels', () => {
  assert.equal(matches('has(constructor)', {}), false);
  assert.equal(matches('toString == "x"', {}), false);
  assert.equal(matches('toString != "x"', {}), true);
  assert.equal(matches('has(__proto__)', {}), false);
  assert.equal(matches('has(constructor)', { constructor: 'yes' }), true);
});

test('all() and the empty selector match everything', () => {
  for (const text of ['', '   ', '\t\n', 'all()', 'all( )', ' all() ']) {
    const s = sel(text);
    assert.equal(s.evaluate({}), true, JSON.stringify(text));
    assert.equal(s.evaluate({ a: 'b' }), true, JSON.stringify(text));
    assert.equal(s.canonical(), 'all()', JSON.stringify(text));
    assert.deepEqual(s.labelKeys(), []);
  }
  assert.equal(matches('!all()', { a: 'b' }), false);
  assert.equal(matches('has(a) && all()', { a: '1' }), true);
  assert.equal(matches('has(a) && all()', {}), false);
});

test('&& and || combine; && binds tighter than ||', () => {
  const s = sel('a == "1" || b == "1" && c == "1"');
  assert.equal(s.canonical(), '(a == "1" || (b == "1" && c == "1"))');
  assert.equal(s.evaluate({ a: '1' }), true, 'a alone satisfies the || branch');
  assert.equal(s.evaluate({ b: '1' }), false, 'b without c does not');
  assert.equal(s.evaluate({ b: '1', c: '1' }), true);
  const t = sel('a == "1" && b == "1" || c == "1"');
  assert.equal(t.canonical(), '((a == "1" && b == "1") || c == "1")');
  assert.equal(t.evaluate({ c: '1' }), true);
  assert.equal(t.evaluate({ a: '1' }), false);
});

test('parentheses override precedence', () => {
  const s = sel('(a == "1" || b == "1") && c == "1"');
  assert.equal(s.canonical(), '((a == "1" || b == "1") && c == "1")');
  assert.equal(s.evaluate({ a: '1' }), false, 'c is now required');
  assert.equal(s.evaluate({ a: '1', c: '1' }), true);
  assert.equal(s.evaluate({ b: '1', c: '1' }), true);
  assert.equal(sel('((((has(x)))))').canonical(), 'has(x)', 'redundant parentheses vanish');
});

test('! binds tighter than && and ||, repeats, and collapses pairwise like libcalico-go', () => {
  const s = sel('!has(a) && has(b)');
  assert.equal(s.canonical(), '(!has(a) && has(b))');
  assert.equal(s.evaluate({ b: '1' }), true);
  assert.equal(s.evaluate({ a: '1', b: '1' }), false);
  const t = sel('!(has(a) && has(b))');
  assert.equal(t.canonical(), '!(has(a) && has(b))');
  assert.equal(t.evaluate({ a: '1' }), true);
  assert.equal(t.evaluate({ a: '1', b: '1' }), false);
  assert.equal(sel('!!has(a)').canonical(), 'has(a)');
  assert.equal(sel('! ! ! has(a)').canonical(), '!has(a)');
  assert.equal(sel('!!!has(a)').evaluate({ a: 'x' }), false);
  assert.equal(sel('!!has(a)').evaluate({ a: 'x' }), true);
  // A negation inside parentheses is its own node, so it is kept (libcalico-go prints the same);
  // that text collapses on the next parse, whose canonical form is then stable.
  assert.equal(sel('!(!has(a))').canonical(), '!!has(a)');
  assert.equal(sel(sel('!(!has(a))').canonical()).canonical(), 'has(a)');
  assert.equal(sel('!(!has(a))').evaluate({ a: 'x' }), true);
  assert.equal(sel('!(!has(a))').evaluate({}), false);
  assert.equal(sel('!(!(!has(a)))').canonical(), '!!!has(a)');
  assert.equal(sel('!!!has(a)').canonical(), '!has(a)');
  assert.equal(sel('!a == "x"').canonical(), '!a == "x"', '! applies to the whole comparison');
  assert.equal(sel('!a == "x"').evaluate({}), true);
  assert.equal(sel('!a == "x"').evaluate({ a: 'x' }), false);
});

test('!= equals the negation of == and not in the negation of in, on every label set', () => {
  const labelSets: Record<string, string>[] = [{}, { a: 'x' }, { a: 'y' }, { a: '' }, { b: 'x' }];
  for (const labels of labelSets) {
    assert.equal(matches('a != "x"', labels), matches('!(a == "x")', labels), JSON.stringify(labels));
    assert.equal(matches('a not in {"x", "y"}', labels), matches('!(a in {"x", "y"})', labels), JSON.stringify(labels));
  }
});

test('canonical form: quoting, spacing, sorted and de-duplicated sets, flat chains', () => {
  const cases: Array<[string, string]> = [
    ["role=='db'", 'role == "db"'],
    ['role   !=   "db"', 'role != "db"'],
    ["a == 'say \"hi\"'", `a == 'say "hi"'`],
    [`a == "it's"`, `a == "it's"`],
    ["k in {'b','a','b','c'}", 'k in {"a", "b", "c"}'],
    ['k in {"B", "a", "_"}', 'k in {"B", "_", "a"}'],
    ['k in {}', 'k in {}'],
    ['k in { }', 'k in {}'],
    ["k in {'b', 'a',}", 'k in {"a", "b"}'],
    ["k notin {'x'}", 'k not in {"x"}'],
    ["k not   in {'y','x'}", 'k not in {"x", "y"}'],
    ['has( k )', 'has(k)'],
    ['has(example.com/tier)', 'has(example.com/tier)'],
    ['a == "1" && b == "2" && c == "3"', '(a == "1" && b == "2" && c == "3")'],
    ['a == "1" || b == "2" || c == "3"', '(a == "1" || b == "2" || c == "3")'],
    ['(a == "1" && b == "2") && c == "3"', '((a == "1" && b == "2") && c == "3")'],
    ['a == "1" && (b == "2" && c == "3")', '(a == "1" && (b == "2" && c == "3"))'],
    ['!(a == "1" || !has(b))', '!(a == "1" || !has(b))'],
    ['calico/k8s_ns == "default"', 'calico/k8s_ns == "default"'],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(sel(input).canonical(), canonical, input);
    assert.equal(sel(canonical).canonical(), canonical, `canonical form of ${input} is stable`);
    assert.equal(canonicalSelector(input), canonical);
    assert.equal(String(sel(input)), canonical, 'toString gives the canonical form');
  }
});

test('labelKeys lists every mentioned key once, sorted', () => {
  assert.deepEqual(sel('z == "1" && (has(a) || m in {"x"}) && !a != "2" && example.com/k not in {}').labelKeys(),
    ['a', 'example.com/k', 'm', 'z']);
  assert.deepEqual(sel('has(only)').labelKeys(), ['only']);
});

test('keywords: has/all/not are usable as label keys, in is reserved (as in libcalico-go)', () => {
  assert.equal(matches('has == "x"', { has: 'x' }), true);
  assert.equal(matches('all == "y"', { all: 'y' }), true);
  assert.equal(matches('not == "z"', { not: 'z' }), true);
  assert.equal(matches('index in {"1"}', { index: '1' }), true, 'a key that starts with "in" is a key');
  assert.equal(matches('notice not in {"1"}', {}), true, 'a key that starts with "not" is a key');
  assertSyntaxError('in == "x"', 'unexpected "in" at position 0, expected an expression');
  assertSyntaxError('not in {"x"}', 'unexpected "not in" at position 0, expected an expression');
});

test('lenient where libcalico-go only rejects: any whitespace, has (k), keys starting with in-', () => {
  assert.equal(sel('a == "1"\n&&\r\nhas(b)').canonical(), '(a == "1" && has(b))');
  assert.equal(sel('has (b)').canonical(), 'has(b)');
  assert.equal(matches('in-house == "yes"', { 'in-house': 'yes' }), true);
});

test('label keys: the allowed characters and the 512-character limit', () => {
  const longest = 'k'.repeat(MAX_LABEL_KEY_LENGTH);
  assert.equal(matches(`${longest} == "v"`, { [longest]: 'v' }), true);
  assert.equal(matches(`has(${longest})`, { [longest]: '' }), true);
  assertSyntaxError(`${longest}k == "v"`, 'label key at position 0 is 513 characters long, at most 512 are allowed');
  assertSyntaxError(`has(${longest}k)`, 'label key at position 4 is 513 characters long, at most 512 are allowed');
  assert.equal(matches('a.b/c-d_e9 == "v"', { 'a.b/c-d_e9': 'v' }), true);
});

test('syntax errors name the selector, the 0-based position and what was expected', () => {
  const cases: Array<[string, string]> = [
    ['has(a) &&', 'unexpected end of input at position 9, expected an expression'],
    ['&& has(a)', 'unexpected "&&" at position 0, expected an expression'],
    ['has(a) || || has(b)', 'unexpected "||" at position 10, expected an expression'],
    ['has(a) has(b)', 'unexpected "has(b)" at position 7, expected "&&", "||" or end of input'],
    ['a == "x" b', 'unexpected label "b" at position 9, expected "&&", "||" or end of input'],
    ['a == "x")', 'unexpected ")" at position 8, expected "&&", "||" or end of input'],
    ['(a == "x"', 'unexpected end of input at position 9, expected "&&", "||" or ")" to close the "(" at position 0'],
    ['()', 'unexpected ")" at position 1, expected an expression'],
    ['!', 'unexpected end of input at position 1, expected an expression'],
    ['a', 'unexpected end of input at position 1, expected "==", "!=", "in" or "not in" after label "a"'],
    ['a has(b)', 'unexpected "has(b)" at position 2, expected "==", "!=", "in" or "not in" after label "a"'],
    ['a == x', 'unexpected label "x" at position 5, expected a quoted string after "=="'],
    ['a != ', 'unexpected end of input at position 5, expected a quoted string after "!="'],
    ['a = "x"', 'unexpected character "=" at position 2, expected "=="'],
    ['has(a) & has(b)', 'unexpected character "&" at position 7, expected "&&"'],
    ['has(a) | has(b)', 'unexpected character "|" at position 7, expected "||"'],
    ['a == "x', 'unterminated string starting at position 5, expected a closing "'],
    ["a == 'x", "unterminated string starting at position 5, expected a closing '"],
    ['a in "x"', 'unexpected string "x" at position 5, expected "{" to start a set of values'],
    ['a in {', 'unexpected end of input at position 6, expected a quoted string or "}"'],
    ['a in {x}', 'unexpected label "x" at position 6, expected a quoted string or "}"'],
    ['a in {"x",,}', 'unexpected "," at position 10, expected a quoted string or "}"'],
    ['a in {,}', 'unexpected "," at position 6, expected a quoted string or "}"'],
    ['a in {"x" "y"}', 'unexpected string "y" at position 10, expected "," or "}"'],
    ['a not in {"x"', 'unexpected end of input at position 13, expected "," or "}"'],
    ['has()', 'unexpected character ")" at position 4, expected a label key inside has()'],
    ['has("a")', 'unexpected character "\\"" at position 4, expected a label key inside has()'],
    ['has(a', 'unexpected end of input at position 5, expected ")" to close has(a'],
    ['has(a b)', 'unexpected character "b" at position 6, expected ")" to close has(a'],
    ['all(x)', 'unexpected character "x" at position 4, expected ")" after "all("'],
    ['a @ "x"', 'unexpected character "@" at position 2, expected a label key, a quoted string, an operator or a parenthesis'],
    ['"x" == a', 'unexpected string "x" at position 0, expected an expression'],
  ];
  for (const [text, problem] of cases) assertSyntaxError(text, problem);
});

test('validateSelector names the field and returns the parsed selector', () => {
  const s = validateSelector('role == "db"', 'spec.selector');
  assert.equal(s.canonical(), 'role == "db"');
  assert.equal(s.evaluate({ role: 'db' }), true);
  assert.throws(() => validateSelector('role ==', 'spec.selector'), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.field, 'spec.selector');
    assert.equal(err.message,
      'spec.selector: invalid selector "role ==": unexpected end of input at position 7, expected a quoted string after "=="');
    return true;
  });
});

// A seeded generator of random selectors: each is printed with random spacing, quotes and extra
// parentheses, and evaluated by an independent reference. Canonical text must be stable and the
// evaluator must agree with the reference on every label set.
test('random selectors: canonical form is a fixed point and evaluation matches a reference', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const keys = ['a', 'b', 'c'];
  const values = ['x', 'y', ''];
  const sp = (): string => [' ', '', '  '][rand(3)]!;
  const q = (v: string): string => (rand(2) === 0 ? `"${v}"` : `'${v}'`);
  type Ref = (l: Record<string, string>) => boolean;
  const gen = (depth: number): [string, Ref] => {
    const kind = depth <= 0 ? rand(5) : rand(9);
    const k = keys[rand(keys.length)]!;
    const v = values[rand(values.length)]!;
    switch (kind) {
      case 0: return [`${k}${sp()}==${sp()}${q(v)}`, (l) => l[k] === v];
      case 1: return [`${k}${sp()}!=${sp()}${q(v)}`, (l) => l[k] !== v];
      case 2: return [`has(${sp()}${k}${sp()})`, (l) => k in l];
      case 3: {
        const set = [values[rand(3)]!, values[rand(3)]!].slice(0, rand(3));
        return [`${k} in {${set.map(q).join(`,${sp()}`)}}`, (l) => k in l && set.includes(l[k]!)];
      }
      case 4: {
        const set = [values[rand(3)]!].slice(0, rand(2));
        return [`${k} not in {${set.map(q).join(',')}}`, (l) => !(k in l && set.includes(l[k]!))];
      }
      case 5: case 6: {
        const [ta, ra] = gen(depth - 1);
        const [tb, rb] = gen(depth - 1);
        return kind === 5 ? [`(${ta})${sp()}&&${sp()}(${tb})`, (l) => ra(l) && rb(l)] : [`(${ta}) || (${tb})`, (l) => ra(l) || rb(l)];
      }
      case 7: {
        const [t, r] = gen(depth - 1);
        return [`!${sp()}(${t})`, (l) => !r(l)];
      }
      default: {
        const [t, r] = gen(depth - 1);
        return [`(${sp()}${t}${sp()})`, r];
      }
    }
  };
  const labelSets: Record<string, string>[] = [];
  for (const a of [undefined, 'x', 'y', '']) {
    for (const b of [undefined, 'x', '']) {
      for (const c of [undefined, 'y']) {
        const l: Record<string, string> = {};
        if (a !== undefined) l.a = a;
        if (b !== undefined) l.b = b;
        if (c !== undefined) l.c = c;
        labelSets.push(l);
      }
    }
  }
  let evaluated = 0;
  let fixedAtOnce = 0;
  for (let n = 0; n < 300; n++) {
    const [text, ref] = gen(4);
    const s = parseSelector(text);
    const canonical = s.canonical();
    const again = parseSelector(canonical);
    // Stable at once, except that a printed `!!` (from `!(!x)`) collapses on the next parse.
    if (!canonical.includes('!!')) {
      assert.equal(again.canonical(), canonical, `canonical form of ${text} is stable`);
      fixedAtOnce++;
    }
    const third = parseSelector(again.canonical());
    assert.equal(third.canonical(), again.canonical(), `second canonical form of ${text} is stable`);
    for (const l of labelSets) {
      assert.equal(s.evaluate(l), ref(l), `${text} on ${JSON.stringify(l)}`);
      assert.equal(again.evaluate(l), ref(l), `${canonical} on ${JSON.stringify(l)}`);
      assert.equal(third.evaluate(l), ref(l));
      evaluated++;
    }
  }
  assert.equal(evaluated, 300 * labelSets.length);
  assert.ok(fixedAtOnce > 200, `most generated selectors have no double negation (${fixedAtOnce})`);
});
