/**
 * Calico label selectors (the libcalico-go 1.7 language): tokenizer, parser, evaluator and the
 * canonical form.
 *
 *   k == 'v'   k != 'v'   has(k)   k in {'a', 'b'}   k not in {...}   all()   (empty = all())
 *   !x (prefix, may repeat)   x && y   x || y   ( x )        precedence: || < && < !
 *
 * Strings are single- or double-quoted with no escapes. Label keys are `[a-zA-Z0-9_./-]{1,512}`,
 * which also covers DNS-prefixed keys such as `example.com/tier`.
 *
 * Semantics worth knowing: `k != 'v'` and `k not in {...}` also match endpoints that lack `k`
 * (they are the exact negations of `==` / `in`), and `!has(k)` matches endpoints without `k`.
 *
 * The canonical form is what other components compare and hash (Felix derives ipset names from
 * it), so it follows libcalico-go exactly: values in double quotes (single quotes when the value
 * holds a `"`), `k == "v"`, `has(k)`, `k in {"a", "b"}` with the set sorted and de-duplicated,
 * `!` directly before its operand, every `&&`/`||` node parenthesised, a single term unwrapped.
 * Like libcalico-go, a run of leading `!` collapses pairwise (`!!has(a)` is `has(a)`), and
 * parentheses in the input are not kept: `(a == "x")` is `a == "x"`, while `(a && b) && c`
 * stays nested as `((a && b) && c)` because the grouping is part of the tree.
 *
 * One libcalico-go quirk is kept on purpose, because the canonical text feeds the ipset-name
 * hash: a negation of a parenthesised negation, `!(!has(a))`, is two nodes and prints as
 * `!!has(a)`, which parses back (collapsed) as `has(a)`. So the canonical form is a fixed point
 * except after such a double negation, where one more round reaches it. Hash
 * `parseSelector(storedText).canonical()` (as Felix does) rather than re-canonicalising.
 *
 * Deliberately more lenient than libcalico-go (inputs it rejects, never a different meaning):
 * any whitespace (not only space and tab) separates tokens, `has (k)` may have a space before
 * the parenthesis, and keys such as `in-house` are label keys rather than the `in` operator.
 */
import { ValidationError } from '../errors.js';

export type Labels = Readonly<Record<string, string>>;

export interface Selector {
  /** True when an endpoint (or node, or profile) with these labels is selected. */
  evaluate(labels: Labels): boolean;
  /** The libcalico-go canonical text; parsing it again gives the same canonical text. */
  canonical(): string;
  /** Every label key the selector mentions, sorted and de-duplicated. */
  labelKeys(): string[];
}

export const MAX_LABEL_KEY_LENGTH = 512;

/** Own-property lookup, so that `has(constructor)` is false on `{}`. */
function labelValue(labels: Labels, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : undefined;
}

/** libcalico-go `formatString`: double quotes unless the value itself contains one. */
function quote(value: string): string {
  return value.includes('"') ? `'${value}'` : `"${value}"`;
}

// ---------------------------------------------------------------------------------------------
// Syntax tree. Each node is a Selector so that a parsed tree can be returned as it is.

abstract class Node implements Selector {
  abstract evaluate(labels: Labels): boolean;
  abstract canonical(): string;
  abstract collectKeys(into: Set<string>): void;
  labelKeys(): string[] {
    const keys = new Set<string>();
    this.collectKeys(keys);
    return [...keys].sort();
  }
  toString(): string {
    return this.canonical();
  }
}

class AllNode extends Node {
  evaluate(): boolean { return true; }
  canonical(): string { return 'all()'; }
  collectKeys(): void {}
}

class HasNode extends Node {
  constructor(readonly key: string) { super(); }
  evaluate(labels: Labels): boolean { return labelValue(labels, this.key) !== undefined; }
  canonical(): string { return `has(${this.key})`; }
  collectKeys(into: Set<string>): void { into.add(this.key); }
}

class EqNode extends Node {
  constructor(readonly key: string, readonly value: string, readonly negated: boolean) { super(); }
  evaluate(labels: Labels): boolean {
    // `!=` is the plain negation of `==`, so a missing label satisfies it.
    return (labelValue(labels, this.key) === this.value) !== this.negated;
  }
  canonical(): string { return `${this.key} ${this.negated ? '!=' : '=='} ${quote(this.value)}`; }
  collectKeys(into: Set<string>): void { into.add(this.key); }
}

class InNode extends Node {
  readonly values: readonly string[];
  private readonly set: ReadonlySet<string>;
  constructor(readonly key: string, values: readonly string[], readonly negated: boolean) {
    super();
    this.set = new Set(values);
    // Code-unit order, as Go's sort.Strings does, so the canonical text matches libcalico-go's.
    this.values = [...this.set].sort();
  }
  evaluate(labels: Labels): boolean {
    const v = labelValue(labels, this.key);
    // `not in` is the plain negation of `in`, so a missing label satisfies it.
    return (v !== undefined && this.set.has(v)) !== this.negated;
  }
  canonical(): string {
    return `${this.key} ${this.negated ? 'not in' : 'in'} {${this.values.map(quote).join(', ')}}`;
  }
  collectKeys(into: Set<string>): void { into.add(this.key); }
}

class NotNode extends Node {
  constructor(readonly operand: Node) { super(); }
  evaluate(labels: Labels): boolean { return !this.operand.evaluate(labels); }
  canonical(): string { return `!${this.operand.canonical()}`; }
  collectKeys(into: Set<string>): void { this.operand.collectKeys(into); }
}

class AndNode extends Node {
  constructor(readonly operands: readonly Node[]) { super(); }
  evaluate(labels: Labels): boolean { return this.operands.every((o) => o.evaluate(labels)); }
  canonical(): string { return `(${this.operands.map((o) => o.canonical()).join(' && ')})`; }
  collectKeys(into: Set<string>): void { for (const o of this.operands) o.collectKeys(into); }
}

class OrNode extends Node {
  constructor(readonly operands: readonly Node[]) { super(); }
  evaluate(labels: Labels): boolean { return this.operands.some((o) => o.evaluate(labels)); }
  canonical(): string { return `(${this.operands.map((o) => o.canonical()).join(' || ')})`; }
  collectKeys(into: Set<string>): void { for (const o of this.operands) o.collectKeys(into); }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer.

type TokenKind =
  | 'label' | 'string' | 'has' | 'all' | 'in' | 'notin'
  | 'eq' | 'ne' | 'not' | 'and' | 'or'
  | 'lparen' | 'rparen' | 'lbrace' | 'rbrace' | 'comma' | 'eof';

interface Token {
  kind: TokenKind;
  /** Label key (label, has) or string value (string). */
  value: string;
  /** 0-based offset of the token's first character in the selector text. */
  pos: number;
}

const PUNCTUATION: Readonly<Record<string, TokenKind>> = {
  '(': 'lparen', ')': 'rparen', '{': 'lbrace', '}': 'rbrace', ',': 'comma',
};
const KEY_CHAR = /[a-zA-Z0-9_./-]/;
const SPACE = /\s/;

class SelectorSyntaxError extends Error {}

/** Splits selector text into tokens; throws SelectorSyntaxError with the problem and position. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const skipSpace = (from: number): number => {
    let j = from;
    while (j < text.length && SPACE.test(text[j]!)) j++;
    return j;
  };
  const readWord = (from: number): string => {
    let j = from;
    while (j < text.length && KEY_CHAR.test(text[j]!)) j++;
    return text.slice(from, j);
  };
  const checkKey = (key: string, pos: number): void => {
    if (key.length > MAX_LABEL_KEY_LENGTH) {
      throw new SelectorSyntaxError(
        `label key at position ${pos} is ${key.length} characters long, at most ${MAX_LABEL_KEY_LENGTH} are allowed`);
    }
  };

  for (;;) {
    i = skipSpace(i);
    if (i >= text.length) break;
    const start = i;
    const c = text[i]!;
    const two = text.slice(i, i + 2);

    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new SelectorSyntaxError(`unterminated string starting at position ${start}, expected a closing ${c}`);
      tokens.push({ kind: 'string', value: text.slice(i + 1, end), pos: start });
      i = end + 1;
      continue;
    }
    const punct = PUNCTUATION[c];
    if (punct) {
      tokens.push({ kind: punct, value: c, pos: start });
      i++;
      continue;
    }
    if (two === '==' || two === '!=' || two === '&&' || two === '||') {
      const kind: TokenKind = two === '==' ? 'eq' : two === '!=' ? 'ne' : two === '&&' ? 'and' : 'or';
      tokens.push({ kind, value: two, pos: start });
      i += 2;
      continue;
    }
    if (c === '!') {
      tokens.push({ kind: 'not', value: c, pos: start });
      i++;
      continue;
    }
    if (c === '=' || c === '&' || c === '|') {
      throw new SelectorSyntaxError(`unexpected character ${JSON.stringify(c)} at position ${start}, expected ${JSON.stringify(c + c)}`);
    }
    if (!KEY_CHAR.test(c)) {
      throw new SelectorSyntaxError(
        `unexpected character ${JSON.stringify(c)} at position ${start}, expected a label key, a quoted string, an operator or a parenthesis`);
    }

    const word = readWord(i);
    const afterWord = skipSpace(i + word.length);
    if ((word === 'has' || word === 'all') && text[afterWord] === '(') {
      let j = skipSpace(afterWord + 1);
      let key = '';
      if (word === 'has') {
        key = readWord(j);
        if (key === '') {
          throw new SelectorSyntaxError(`${describeChar(text, j)} at position ${j}, expected a label key inside has()`);
        }
        checkKey(key, j);
        j = skipSpace(j + key.length);
      }
      if (text[j] !== ')') {
        const expected = word === 'has' ? `")" to close has(${key}` : '")" after "all("';
        throw new SelectorSyntaxError(`${describeChar(text, j)} at position ${j}, expected ${expected}`);
      }
      tokens.push({ kind: word, value: key, pos: start });
      i = j + 1;
      continue;
    }
    if (word === 'in' || word === 'notin') {
      tokens.push({ kind: word, value: word, pos: start });
      i += word.length;
      continue;
    }
    if (word === 'not') {
      // libcalico-go reads `not\s*in` as one operator; `not` on its own is an ordinary label key.
      const next = readWord(afterWord);
      if (next === 'in') {
        tokens.push({ kind: 'notin', value: 'not in', pos: start });
        i = afterWord + 2;
        continue;
      }
    }
    checkKey(word, start);
    tokens.push({ kind: 'label', value: word, pos: start });
    i += word.length;
  }
  tokens.push({ kind: 'eof', value: '', pos: text.length });
  return tokens;
}

function describeChar(text: string, pos: number): string {
  return pos >= text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[pos])}`;
}

function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'end of input';
    case 'label': return `label ${JSON.stringify(t.value)}`;
    case 'string': return `string ${quote(t.value)}`;
    case 'has': return `"has(${t.value})"`;
    case 'all': return '"all()"';
    case 'notin': return '"not in"';
    default: return JSON.stringify(t.value);
  }
}

// ---------------------------------------------------------------------------------------------
// Recursive-descent parser over the tokens.

const EXPECT_EXPRESSION = 'an expression';

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token { return this.tokens[this.i]!; }
  private next(): Token { return this.tokens[this.i++]!; }
  private fail(t: Token, expected: string): never {
    throw new SelectorSyntaxError(`unexpected ${describeToken(t)} at position ${t.pos}, expected ${expected}`);
  }

  parseSelector(): Node {
    if (this.peek().kind === 'eof') return new AllNode();
    const node = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(t, '"&&", "||" or end of input');
    return node;
  }

  private parseOr(): Node {
    const operands = [this.parseAnd()];
    while (this.peek().kind === 'or') {
      this.next();
      operands.push(this.parseAnd());
    }
    return operands.length === 1 ? operands[0]! : new OrNode(operands);
  }

  private parseAnd(): Node {
    const operands = [this.parseUnary()];
    while (this.peek().kind === 'and') {
      this.next();
      operands.push(this.parseUnary());
    }
    return operands.length === 1 ? operands[0]! : new AndNode(operands);
  }

  private parseUnary(): Node {
    // A run of `!` collapses pairwise, as libcalico-go does.
    let negated = false;
    while (this.peek().kind === 'not') {
      this.next();
      negated = !negated;
    }
    const operand = this.parseOperand();
    return negated ? new NotNode(operand) : operand;
  }

  private parseOperand(): Node {
    const t = this.next();
    switch (t.kind) {
      case 'all': return new AllNode();
      case 'has': return new HasNode(t.value);
      case 'lparen': {
        const inner = this.parseOr();
        const close = this.next();
        if (close.kind !== 'rparen') this.fail(close, `"&&", "||" or ")" to close the "(" at position ${t.pos}`);
        return inner;
      }
      case 'label': return this.parseComparison(t.value);
      default: return this.fail(t, EXPECT_EXPRESSION);
    }
  }

  private parseComparison(key: string): Node {
    const op = this.next();
    switch (op.kind) {
      case 'eq':
      case 'ne': {
        const v = this.next();
        if (v.kind !== 'string') this.fail(v, `a quoted string after ${JSON.stringify(op.value)}`);
        return new EqNode(key, v.value, op.kind === 'ne');
      }
      case 'in':
      case 'notin':
        return new InNode(key, this.parseSet(), op.kind === 'notin');
      default:
        return this.fail(op, `"==", "!=", "in" or "not in" after label ${JSON.stringify(key)}`);
    }
  }

  private parseSet(): string[] {
    const open = this.next();
    if (open.kind !== 'lbrace') this.fail(open, '"{" to start a set of values');
    const values: string[] = [];
    if (this.peek().kind === 'rbrace') {
      this.next();
      return values;
    }
    for (;;) {
      const v = this.next();
      if (v.kind !== 'string') this.fail(v, 'a quoted string or "}"');
      values.push(v.value);
      const sep = this.next();
      if (sep.kind === 'rbrace') return values;
      if (sep.kind !== 'comma') this.fail(sep, '"," or "}"');
      // libcalico-go accepts a trailing comma after a value: {"a", "b",}
      if (this.peek().kind === 'rbrace') {
        this.next();
        return values;
      }
    }
  }
}

/**
 * Parses a selector. An empty (or all-space) selector is `all()`.
 * Throws ValidationError naming the selector, the 0-based position and what was expected.
 */
export function parseSelector(text: string): Selector {
  try {
    return new Parser(tokenize(text)).parseSelector();
  } catch (err) {
    if (err instanceof SelectorSyntaxError) {
      throw new ValidationError(`invalid selector ${JSON.stringify(text)}: ${err.message}`, 'selector', SELECTOR_HINT);
    }
    throw err;
  }
}

const SELECTOR_HINT =
  `selectors look like: role == "db" && !has(debug), env in {"prod", "staging"}, (a != "x" || b not in {}), all()`;

/**
 * Validates a selector held in a named field of a resource or flag, and returns it parsed.
 * The error's message starts with the field name and its `field` is set.
 */
export function validateSelector(text: string, field: string): Selector {
  try {
    return parseSelector(text);
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(`${field}: ${err.message}`, field, err.hint);
    throw err;
  }
}

/** The canonical text of a selector given as text (a convenience for storing and comparing). */
export function canonicalSelector(text: string): string {
  return parseSelector(text).canonical();
}
