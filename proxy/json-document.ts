/**
 * A JSON body that interceptors can read and edit without losing anything they did not touch.
 *
 * Why not JSON.parse/JSON.stringify: the Docker API carries int64 fields (Memory, NanoCpus,
 * MemorySwap, ...) that a JS number cannot hold exactly, duplicate keys that Go merges, and fields
 * this proxy has never heard of. So the body is kept as its original text plus a tree of spans;
 * an edit re-serialises only the objects on the path to the edited field, and everything else
 * (unknown fields, number spellings, whitespace, trailing bytes after the value — Go's
 * json.Decoder ignores those) is copied byte for byte. An unedited document gives back the very
 * bytes it was parsed from.
 *
 * Field lookup follows Go's encoding/json, which is what the daemon decodes with: names match
 * case-insensitively and, when several keys match, the last one wins.
 */
import { JsonSyntaxError } from './errors.js';

/** A JSON number that a JS number cannot represent exactly (e.g. 9007199254740993, 1e400, 1.0). */
export class LosslessNumber {
  constructor(readonly text: string) {
    if (!NUMBER_RE.test(text)) throw new JsonSyntaxError(`not a JSON number: ${JSON.stringify(text)}`, 0);
  }
  valueOf(): number { return Number(this.text); }
  toString(): string { return this.text; }
}

export type JsonValue = null | boolean | number | string | LosslessNumber | JsonValue[] | { [key: string]: JsonValue };
/** What `set` accepts: JsonValue, plus bigint for exact integers. */
export type JsonInput = JsonValue | bigint | JsonInput[] | { [key: string]: JsonInput };
export type JsonPath = readonly (string | number)[];

const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const MAX_DEPTH = 1000;

interface Span { src: string; start: number; end: number }
interface ScalarNode extends Span { kind: 'scalar' }
interface ObjectNode extends Span { kind: 'object'; members: Member[]; dirty: boolean }
interface ArrayNode extends Span { kind: 'array'; items: Node[]; dirty: boolean }
type Node = ScalarNode | ObjectNode | ArrayNode;
interface Member { rawKey: string; key: string; value: Node }

export class JsonDocument {
  private changedFlag = false;

  private constructor(private readonly original: Buffer, private readonly text: string, private readonly root: Node) {}

  /** Parses the first JSON value in `input`; bytes after it are kept verbatim. */
  static parse(input: Buffer | string): JsonDocument {
    const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    const text = buf.toString('utf8');
    const root = new Parser(text).parseDocument();
    return new JsonDocument(buf, text, root);
  }

  /** True once any edit has been made. */
  get changed(): boolean { return this.changedFlag; }

  /** The value at `path` (Go semantics for keys), or undefined if absent. [] is the whole document. */
  get(path: JsonPath = []): JsonValue | undefined {
    const node = this.find(path);
    return node === undefined ? undefined : decode(node);
  }

  has(path: JsonPath): boolean { return this.find(path) !== undefined; }

  /**
   * Sets the value at `path`, creating missing objects on the way (a null or non-object in the way
   * is replaced by an object). Array elements can be replaced by index but not appended: set the
   * whole array instead.
   */
  set(path: JsonPath, value: JsonInput): void {
    if (path.length === 0) throw new RangeError('set needs a non-empty path; to replace the whole document parse a new one');
    const newNode = parseValueText(serialize(value));
    this.checkSettable(path);
    let node: Node = this.root;
    for (let i = 0; i < path.length; i++) {
      const step = path[i];
      const last = i === path.length - 1;
      if (node.kind === 'object' && typeof step === 'string') {
        node.dirty = true;
        const member = lastMatch(node, step);
        if (last) {
          if (member) member.value = newNode;
          else node.members.push({ rawKey: JSON.stringify(step), key: step, value: newNode });
          break;
        }
        if (member) {
          if (member.value.kind !== 'object' && member.value.kind !== 'array') member.value = emptyObject();
          node = member.value;
        } else {
          const child = emptyObject();
          node.members.push({ rawKey: JSON.stringify(step), key: step, value: child });
          node = child;
        }
      } else if (node.kind === 'array' && typeof step === 'number') {
        if (!Number.isInteger(step) || step < 0 || step >= node.items.length) {
          throw new RangeError(`index ${step} is outside the array at ${formatPath(path.slice(0, i))}`);
        }
        node.dirty = true;
        if (last) { node.items[step] = newNode; break; }
        const child = node.items[step];
        if (child.kind !== 'object' && child.kind !== 'array') node.items[step] = emptyObject();
        node = node.items[step];
      } else {
        throw new TypeError(`cannot step into ${formatPath(path.slice(0, i))} with ${JSON.stringify(step)}: it is ${describe(node)}`);
      }
    }
    this.changedFlag = true;
  }

  /** Throws (before anything is modified) if `set(path)` could not be carried out. */
  private checkSettable(path: JsonPath): void {
    let node: Node | undefined = this.root;
    for (let i = 0; i < path.length; i++) {
      const step = path[i];
      if (node === undefined) {
        // Below a key that set will create: only object keys can be made.
        if (typeof step !== 'string') throw new RangeError(`index ${step} is outside the array at ${formatPath(path.slice(0, i))}`);
        continue;
      }
      if (node.kind === 'object' && typeof step === 'string') {
        const m = lastMatch(node, step);
        node = m && (m.value.kind === 'object' || m.value.kind === 'array') ? m.value : undefined;
      } else if (node.kind === 'array' && typeof step === 'number') {
        if (!Number.isInteger(step) || step < 0 || step >= node.items.length) {
          throw new RangeError(`index ${step} is outside the array at ${formatPath(path.slice(0, i))}`);
        }
        const child: Node = node.items[step];
        node = child.kind === 'object' || child.kind === 'array' ? child : undefined;
      } else {
        throw new TypeError(`cannot step into ${formatPath(path.slice(0, i))} with ${JSON.stringify(step)}: it is ${describe(node)}`);
      }
    }
  }

  /** Removes every key under the parent that Go would decode into this field. True if any was there. */
  delete(path: JsonPath): boolean {
    if (path.length === 0) throw new RangeError('delete needs a non-empty path');
    const parents = this.findChain(path.slice(0, -1));
    if (!parents) return false;
    const parent = parents[parents.length - 1];
    const step = path[path.length - 1];
    let removed = false;
    if (parent.kind === 'object' && typeof step === 'string') {
      const folded = fold(step);
      const kept = parent.members.filter((m) => fold(m.key) !== folded);
      removed = kept.length !== parent.members.length;
      parent.members = kept;
    } else if (parent.kind === 'array' && typeof step === 'number' && step >= 0 && step < parent.items.length) {
      parent.items.splice(step, 1);
      removed = true;
    }
    if (removed) {
      for (const p of parents) if (p.kind !== 'scalar') p.dirty = true;
      this.changedFlag = true;
    }
    return removed;
  }

  /** The document's bytes: the original buffer if nothing changed. */
  toBuffer(): Buffer {
    if (!this.changedFlag) return this.original;
    return Buffer.from(this.toString(), 'utf8');
  }

  toString(): string {
    if (!this.changedFlag) return this.text;
    // The root is never replaced (set needs a non-empty path), so its span is still in `text`:
    // keep the whitespace before it and whatever followed it.
    return this.text.slice(0, this.root.start) + emit(this.root) + this.text.slice(this.root.end);
  }

  private find(path: JsonPath): Node | undefined {
    const chain = this.findChain(path);
    return chain ? chain[chain.length - 1] : undefined;
  }

  private findChain(path: JsonPath): Node[] | undefined {
    let node: Node = this.root;
    const chain = [node];
    for (const step of path) {
      if (node.kind === 'object' && typeof step === 'string') {
        const m = lastMatch(node, step);
        if (!m) return undefined;
        node = m.value;
      } else if (node.kind === 'array' && typeof step === 'number' && step >= 0 && step < node.items.length) {
        node = node.items[step];
      } else {
        return undefined;
      }
      chain.push(node);
    }
    return chain;
  }
}

/** Go's encoding/json field matching: case-insensitive, last matching key wins. */
function lastMatch(node: ObjectNode, key: string): Member | undefined {
  const folded = fold(key);
  for (let i = node.members.length - 1; i >= 0; i--) {
    if (node.members[i].key === key || fold(node.members[i].key) === folded) return node.members[i];
  }
  return undefined;
}

/** Close to Go's simple case folding (upper-then-lower folds ſ to s and K to k as Go does). */
function fold(s: string): string { return s.toUpperCase().toLowerCase(); }

function emptyObject(): ObjectNode {
  return { kind: 'object', src: '{}', start: 0, end: 2, members: [], dirty: true };
}

function describe(node: Node): string {
  if (node.kind === 'scalar') return `the scalar ${node.src.slice(node.start, node.end).slice(0, 40)}`;
  return `an ${node.kind}`;
}

function formatPath(path: JsonPath): string {
  return path.length === 0 ? '(root)' : path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
}

function emit(node: Node): string {
  if (node.kind === 'scalar' || !node.dirty) return node.src.slice(node.start, node.end);
  if (node.kind === 'array') return '[' + node.items.map(emit).join(',') + ']';
  return '{' + node.members.map((m) => m.rawKey + ':' + emit(m.value)).join(',') + '}';
}

function decode(node: Node): JsonValue {
  switch (node.kind) {
    case 'object':
      // fromEntries: later duplicates overwrite earlier ones (last wins), and "__proto__" stays an
      // ordinary key instead of replacing the prototype.
      return Object.fromEntries(node.members.map((m) => [m.key, decode(m.value)]));
    case 'array':
      return node.items.map(decode);
    case 'scalar': {
      const raw = node.src.slice(node.start, node.end);
      const c = raw[0];
      if (c === '"') return JSON.parse(raw) as string;
      if (c === 't') return true;
      if (c === 'f') return false;
      if (c === 'n') return null;
      const n = Number(raw);
      return Number.isFinite(n) && String(n) === raw ? n : new LosslessNumber(raw);
    }
  }
}

/** Serialises a value from an interceptor; LosslessNumber and bigint keep their exact digits. */
export function serialize(value: JsonInput): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false';
    case 'string': return JSON.stringify(value);
    case 'bigint': return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} cannot be written as JSON`);
      return JSON.stringify(value);
    case 'object':
      if (value instanceof LosslessNumber) return value.text;
      if (Array.isArray(value)) return '[' + value.map(serialize).join(',') + ']';
      return '{' + Object.entries(value).map(([k, v]) => JSON.stringify(k) + ':' + serialize(v)).join(',') + '}';
    default:
      throw new TypeError(`a ${typeof value} cannot be written as JSON`);
  }
}

function parseValueText(text: string): Node {
  return new Parser(text).parseDocument();
}

/** Recursive-descent JSON parser that records spans instead of building values. */
class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parseDocument(): Node {
    this.skipWs();
    return this.value(0);
  }

  private fail(msg: string): never { throw new JsonSyntaxError(msg, this.pos); }

  private skipWs(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  private value(depth: number): Node {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH}`);
    const c = this.src[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    const start = this.pos;
    if (c === '"') this.string();
    else if (c === 't') this.literal('true');
    else if (c === 'f') this.literal('false');
    else if (c === 'n') this.literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) this.number();
    else this.fail(c === undefined ? 'unexpected end of JSON input' : `unexpected character ${JSON.stringify(c)}`);
    return { kind: 'scalar', src: this.src, start, end: this.pos };
  }

  private object(depth: number): ObjectNode {
    const start = this.pos++;
    const members: Member[] = [];
    this.skipWs();
    if (this.src[this.pos] === '}') {
      this.pos++;
      return { kind: 'object', src: this.src, start, end: this.pos, members, dirty: false };
    }
    for (;;) {
      this.skipWs();
      if (this.src[this.pos] !== '"') this.fail('expected a string key');
      const keyStart = this.pos;
      this.string();
      const rawKey = this.src.slice(keyStart, this.pos);
      this.skipWs();
      if (this.src[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      this.skipWs();
      const value = this.value(depth + 1);
      members.push({ rawKey, key: JSON.parse(rawKey) as string, value });
      this.skipWs();
      const c = this.src[this.pos++];
      if (c === '}') break;
      if (c !== ',') { this.pos--; this.fail('expected "," or "}"'); }
    }
    return { kind: 'object', src: this.src, start, end: this.pos, members, dirty: false };
  }

  private array(depth: number): ArrayNode {
    const start = this.pos++;
    const items: Node[] = [];
    this.skipWs();
    if (this.src[this.pos] === ']') {
      this.pos++;
      return { kind: 'array', src: this.src, start, end: this.pos, items, dirty: false };
    }
    for (;;) {
      this.skipWs();
      items.push(this.value(depth + 1));
      this.skipWs();
      const c = this.src[this.pos++];
      if (c === ']') break;
      if (c !== ',') { this.pos--; this.fail('expected "," or "]"'); }
    }
    return { kind: 'array', src: this.src, start, end: this.pos, items, dirty: false };
  }

  private string(): void {
    const s = this.src;
    this.pos++; // opening quote
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) { this.pos++; return; }
      if (c < 0x20) this.fail('control character in string');
      if (c === 0x5c) {
        const e = s[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(this.pos + 2, this.pos + 6))) this.fail('bad \\u escape');
          this.pos += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          this.pos += 2;
        } else {
          this.fail('bad escape');
        }
        continue;
      }
      this.pos++;
    }
    this.fail('unterminated string');
  }

  private literal(word: string): void {
    if (this.src.startsWith(word, this.pos)) this.pos += word.length;
    else this.fail(`expected ${word}`);
  }

  private number(): void {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.src);
    if (!r || r[0].length === 0 || r[0] === '-') this.fail('bad number');
    this.pos += r[0].length;
  }
}
