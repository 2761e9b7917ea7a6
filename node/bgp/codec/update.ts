/**
 * UPDATE (RFC 4271 §4.3, MP-BGP RFC 4760, revised error handling RFC 7606).
 *
 * Decoding checks the whole message before anything is applied, so a message that must reset the
 * session never half-applies. Errors RFC 7606 lets us survive are reported on the result:
 * `treatAsWithdraw` turns every announced prefix into a withdrawal, and discarded attributes are
 * listed in `discarded`. Attribute sets are cached per session by their raw bytes, so a table
 * dump in which thousands of UPDATEs share one attribute set parses those attributes once.
 */
import {
  AFI_IPV4, AFI_IPV6, Afi, Attr, ErrCode, UpdateSub, FLAG_OPTIONAL, FLAG_TRANSITIVE, FLAG_EXTENDED,
  SAFI_UNICAST, MsgType, HEADER_LENGTH, MAX_MESSAGE_LENGTH,
} from './constants.js';
import { BgpProtocolError } from '../errors.js';
import { validatePrefixes, ipv4ToString, ipv6WordsToString, encodePrefix, encodedPrefixSize, PrefixWords, parseAddress, ipv6ToBytes } from './prefix.js';
import { PathAttrs, parseAsPath, mergeAs4Path, nextHopV4Valid, AsSegment, UnknownAttr } from './attrs.js';
import { writeHeader } from './header.js';

export interface NlriBlock {
  afi: Afi;
  buf: Buffer;
  start: number;
  end: number;
  count: number;
  /** For announcements: the next hop that applies to this block. */
  nextHop?: string;
}

export interface DecodedUpdate {
  withdrawn: NlriBlock[];
  announced: NlriBlock[];
  /** Shared attributes (with the classic NEXT_HOP, if any) when there are announcements. */
  attrs?: PathAttrs;
  /** Identity of the non-MP attribute bytes: equal keys mean equal `attrs`. */
  attrKey: string;
  treatAsWithdraw?: string;
  discarded: string[];
  /** Set when the message is an End-of-RIB marker (RFC 4724 §2). */
  endOfRib?: Afi;
}

export interface UpdateContext {
  as4: boolean;
  ibgp: boolean;
  /** Unicast families negotiated on this session. */
  families: ReadonlySet<number>;
  /** Per-session cache of parsed attribute sets by raw bytes. */
  cache?: Map<string, AttrParse>;
}

export interface AttrParse {
  attrs: PathAttrs;
  withdrawReason?: string;
  discarded: string[];
  hasNextHop: boolean;
  hasOrigin: boolean;
  hasAsPath: boolean;
}

function malformed(detail: string): BgpProtocolError {
  return new BgpProtocolError(ErrCode.Update, UpdateSub.MalformedAttrList, Buffer.alloc(0), detail);
}

function optionalError(detail: string, data = Buffer.alloc(0)): BgpProtocolError {
  return new BgpProtocolError(ErrCode.Update, UpdateSub.OptionalAttr, data, detail);
}

const CACHE_LIMIT = 4096;

/** Expected Optional/Transitive bits of the attributes we know. */
const EXPECTED_FLAGS: Record<number, number> = {
  [Attr.Origin]: FLAG_TRANSITIVE,
  [Attr.AsPath]: FLAG_TRANSITIVE,
  [Attr.NextHop]: FLAG_TRANSITIVE,
  [Attr.Med]: FLAG_OPTIONAL,
  [Attr.LocalPref]: FLAG_TRANSITIVE,
  [Attr.AtomicAggregate]: FLAG_TRANSITIVE,
  [Attr.Aggregator]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
  [Attr.Communities]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
  [Attr.OriginatorId]: FLAG_OPTIONAL,
  [Attr.ClusterList]: FLAG_OPTIONAL,
  [Attr.MpReach]: FLAG_OPTIONAL,
  [Attr.MpUnreach]: FLAG_OPTIONAL,
  [Attr.ExtCommunities]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
  [Attr.As4Path]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
  [Attr.As4Aggregator]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
  [Attr.LargeCommunities]: FLAG_OPTIONAL | FLAG_TRANSITIVE,
};

/** RFC 7606: errors in these lose the attribute, not the route. */
const DISCARD_ON_ERROR = new Set<number>([Attr.AtomicAggregate, Attr.Aggregator, Attr.As4Path, Attr.As4Aggregator]);

interface RawAttr { flags: number; type: number; start: number; end: number; hdrStart: number }

export function decodeUpdate(body: Buffer, ctx: UpdateContext): DecodedUpdate {
  const total = body.length;
  if (total < 4) throw malformed('UPDATE shorter than its fixed fields');
  const wlen = body.readUInt16BE(0);
  if (2 + wlen + 2 > total) throw malformed(`withdrawn routes length ${wlen} overruns the message`);
  const alen = body.readUInt16BE(2 + wlen);
  const attrStart = 4 + wlen;
  const attrEnd = attrStart + alen;
  if (attrEnd > total) throw malformed(`total path attribute length ${alen} overruns the message`);

  const withdrawn: NlriBlock[] = [];
  const announced: NlriBlock[] = [];
  if (wlen > 0) {
    const count = validatePrefixes(body, 2, 2 + wlen, AFI_IPV4);
    withdrawn.push({ afi: AFI_IPV4, buf: body, start: 2, end: 2 + wlen, count });
  }
  const nlriCount = attrEnd < total ? validatePrefixes(body, attrEnd, total, AFI_IPV4) : 0;

  // First pass: frame the attributes. Framing errors cannot be survived (RFC 7606 §4).
  const seen = new Set<number>();
  const others: RawAttr[] = [];
  let mpReach: RawAttr | undefined;
  let mpUnreach: RawAttr | undefined;
  for (let off = attrStart; off < attrEnd; ) {
    if (off + 3 > attrEnd) throw malformed('truncated attribute header');
    const flags = body[off]!;
    const type = body[off + 1]!;
    let len: number;
    let hdr: number;
    if (flags & FLAG_EXTENDED) {
      if (off + 4 > attrEnd) throw malformed('truncated extended attribute header');
      len = body.readUInt16BE(off + 2);
      hdr = 4;
    } else {
      len = body[off + 2]!;
      hdr = 3;
    }
    if (off + hdr + len > attrEnd) throw malformed(`attribute ${type} length ${len} overruns the attribute list`);
    const a: RawAttr = { flags, type, start: off + hdr, end: off + hdr + len, hdrStart: off };
    off += hdr + len;
    if (type === Attr.MpReach || type === Attr.MpUnreach) {
      // RFC 7606 §3(g): a repeated MP attribute resets the session.
      if (seen.has(type)) throw malformed(`attribute ${type} appears twice`);
      seen.add(type);
      if (type === Attr.MpReach) mpReach = a; else mpUnreach = a;
      continue;
    }
    if (seen.has(type)) continue; // later copies of other attributes are discarded
    seen.add(type);
    if (!(flags & FLAG_OPTIONAL) && EXPECTED_FLAGS[type] === undefined) {
      // An unrecognized well-known attribute: RFC 4271 §6.3, still a session reset under RFC 7606.
      throw new BgpProtocolError(ErrCode.Update, UpdateSub.UnrecognizedWellKnown, Buffer.from(body.subarray(a.hdrStart, a.end)), `unrecognized well-known attribute ${type}`);
    }
    others.push(a);
  }

  if (mpUnreach) {
    const v = body.subarray(mpUnreach.start, mpUnreach.end);
    if (v.length < 3) throw optionalError('MP_UNREACH_NLRI shorter than 3 octets');
    const afi = v.readUInt16BE(0);
    const safi = v[2]!;
    if (safi === SAFI_UNICAST && (afi === AFI_IPV4 || afi === AFI_IPV6) && ctx.families.has(afi)) {
      const start = mpUnreach.start + 3;
      const count = validatePrefixes(body, start, mpUnreach.end, afi as Afi);
      withdrawn.push({ afi: afi as Afi, buf: body, start, end: mpUnreach.end, count });
    }
  }
  let mpBlock: NlriBlock | undefined;
  if (mpReach) {
    const v = body.subarray(mpReach.start, mpReach.end);
    if (v.length < 5) throw optionalError('MP_REACH_NLRI shorter than 5 octets');
    const afi = v.readUInt16BE(0);
    const safi = v[2]!;
    const nhLen = v[3]!;
    if (5 + nhLen > v.length) throw optionalError(`MP_REACH_NLRI next hop length ${nhLen} overruns the attribute`);
    if (safi === SAFI_UNICAST && (afi === AFI_IPV4 || afi === AFI_IPV6) && ctx.families.has(afi)) {
      let nextHop: string;
      if (afi === AFI_IPV4) {
        if (nhLen !== 4) throw optionalError(`IPv4 MP_REACH_NLRI next hop length ${nhLen}`);
        nextHop = ipv4ToString(v.readUInt32BE(4));
      } else {
        // 16 = global, 32 = global + link-local (RFC 2545): we route via the global one.
        if (nhLen !== 16 && nhLen !== 32) throw optionalError(`IPv6 MP_REACH_NLRI next hop length ${nhLen}`);
        nextHop = ipv6WordsToString([v.readUInt32BE(4), v.readUInt32BE(8), v.readUInt32BE(12), v.readUInt32BE(16)]);
      }
      const start = mpReach.start + 5 + nhLen;
      const count = validatePrefixes(body, start, mpReach.end, afi as Afi);
      if (count > 0) mpBlock = { afi: afi as Afi, buf: body, start, end: mpReach.end, count, nextHop };
    }
  }

  // End-of-RIB (RFC 4724 §2): an empty UPDATE (IPv4), or one with only an empty MP_UNREACH.
  if (total === 4) return { withdrawn: [], announced: [], attrKey: '', discarded: [], endOfRib: AFI_IPV4 };
  if (mpUnreach && !mpReach && others.length === 0 && wlen === 0 && nlriCount === 0 && mpUnreach.end - mpUnreach.start === 3) {
    const afi = body.readUInt16BE(mpUnreach.start);
    if (afi === AFI_IPV4 || afi === AFI_IPV6) return { withdrawn: [], announced: [], attrKey: '', discarded: [], endOfRib: afi as Afi };
  }

  const hasAnnouncements = nlriCount > 0 || mpBlock !== undefined;
  let key = '';
  for (const a of others) key += body.toString('latin1', a.hdrStart, a.end);
  if (!hasAnnouncements) {
    return { withdrawn, announced, attrKey: key, discarded: [] };
  }

  let parsed = ctx.cache?.get(key);
  if (!parsed) {
    parsed = parseAttrs(body, others, ctx);
    if (ctx.cache) {
      if (ctx.cache.size >= CACHE_LIMIT) ctx.cache.clear();
      ctx.cache.set(key, parsed);
    }
  }
  let withdrawReason = parsed.withdrawReason;
  if (!withdrawReason) {
    if (!parsed.hasOrigin) withdrawReason = 'missing well-known attribute ORIGIN';
    else if (!parsed.hasAsPath) withdrawReason = 'missing well-known attribute AS_PATH';
    else if (nlriCount > 0 && !parsed.hasNextHop) withdrawReason = 'missing well-known attribute NEXT_HOP';
  }
  if (nlriCount > 0) announced.push({ afi: AFI_IPV4, buf: body, start: attrEnd, end: total, count: nlriCount, nextHop: parsed.attrs.nextHop });
  if (mpBlock) announced.push(mpBlock);
  if (withdrawReason) {
    // RFC 7606 §2 treat-as-withdraw: the prefixes go away as if withdrawn; the session stays.
    return { withdrawn: [...withdrawn, ...announced], announced: [], attrKey: key, treatAsWithdraw: withdrawReason, discarded: parsed.discarded };
  }
  return { withdrawn, announced, attrs: parsed.attrs, attrKey: key, discarded: parsed.discarded };
}

function parseAttrs(body: Buffer, list: RawAttr[], ctx: UpdateContext): AttrParse {
  const attrs: PathAttrs = { origin: 2, asPath: [], nextHop: '' };
  const discarded: string[] = [];
  let withdrawReason: string | undefined;
  let hasOrigin = false;
  let hasAsPath = false;
  let hasNextHop = false;
  let as4Path: AsSegment[] | undefined;
  let as4Aggregator: { as: number; id: string } | undefined;
  const unknown: UnknownAttr[] = [];
  const withdraw = (why: string) => { withdrawReason ??= why; };

  for (const a of list) {
    const v = body.subarray(a.start, a.end);
    const len = v.length;
    const expected = EXPECTED_FLAGS[a.type];
    if (expected === undefined) {
      // Unknown optional: pass on if transitive (with Partial set when we send it), else drop.
      if (a.flags & FLAG_TRANSITIVE) unknown.push({ flags: a.flags & 0xe0, type: a.type, value: Buffer.from(v) });
      continue;
    }
    if ((a.flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE)) !== expected) {
      if (DISCARD_ON_ERROR.has(a.type)) { discarded.push(`attribute ${a.type}: flags 0x${a.flags.toString(16)}`); continue; }
      withdraw(`attribute ${a.type} has flags 0x${a.flags.toString(16)}`);
      continue;
    }
    switch (a.type) {
      case Attr.Origin:
        if (len !== 1 || v[0]! > 2) withdraw(`bad ORIGIN (length ${len})`);
        else { attrs.origin = v[0]!; hasOrigin = true; }
        break;
      case Attr.AsPath: {
        const p = parseAsPath(v, ctx.as4 ? 4 : 2);
        if (!p) withdraw('malformed AS_PATH');
        else { attrs.asPath = p; hasAsPath = true; }
        break;
      }
      case Attr.NextHop:
        if (len !== 4) withdraw(`NEXT_HOP length ${len}`);
        else if (!nextHopV4Valid(v.readUInt32BE(0))) withdraw(`NEXT_HOP ${ipv4ToString(v.readUInt32BE(0))} is not a usable address`);
        else { attrs.nextHop = ipv4ToString(v.readUInt32BE(0)); hasNextHop = true; }
        break;
      case Attr.Med:
        if (len !== 4) withdraw(`MULTI_EXIT_DISC length ${len}`);
        else attrs.med = v.readUInt32BE(0);
        break;
      case Attr.LocalPref:
        // RFC 7606 §7.5: from eBGP it is ignored; a bad length from iBGP withdraws.
        if (!ctx.ibgp) { discarded.push('LOCAL_PREF from an external peer'); break; }
        if (len !== 4) withdraw(`LOCAL_PREF length ${len}`);
        else attrs.localPref = v.readUInt32BE(0);
        break;
      case Attr.AtomicAggregate:
        if (len !== 0) discarded.push(`ATOMIC_AGGREGATE length ${len}`);
        else attrs.atomicAggregate = true;
        break;
      case Attr.Aggregator: {
        const want = ctx.as4 ? 8 : 6;
        if (len !== want) { discarded.push(`AGGREGATOR length ${len}`); break; }
        attrs.aggregator = ctx.as4
          ? { as: v.readUInt32BE(0), id: ipv4ToString(v.readUInt32BE(4)) }
          : { as: v.readUInt16BE(0), id: ipv4ToString(v.readUInt32BE(2)) };
        break;
      }
      case Attr.Communities:
        if (len === 0 || len % 4 !== 0) withdraw(`COMMUNITIES length ${len}`);
        else { const c: number[] = []; for (let i = 0; i < len; i += 4) c.push(v.readUInt32BE(i)); attrs.communities = c; }
        break;
      case Attr.OriginatorId:
        if (!ctx.ibgp) { discarded.push('ORIGINATOR_ID from an external peer'); break; }
        if (len !== 4) withdraw(`ORIGINATOR_ID length ${len}`);
        else attrs.originatorId = v.readUInt32BE(0);
        break;
      case Attr.ClusterList:
        if (!ctx.ibgp) { discarded.push('CLUSTER_LIST from an external peer'); break; }
        if (len === 0 || len % 4 !== 0) withdraw(`CLUSTER_LIST length ${len}`);
        else { const c: number[] = []; for (let i = 0; i < len; i += 4) c.push(v.readUInt32BE(i)); attrs.clusterList = c; }
        break;
      case Attr.ExtCommunities:
        if (len === 0 || len % 8 !== 0) withdraw(`EXTENDED_COMMUNITIES length ${len}`);
        else attrs.extCommunities = Buffer.from(v);
        break;
      case Attr.LargeCommunities:
        if (len === 0 || len % 12 !== 0) withdraw(`LARGE_COMMUNITY length ${len}`);
        else attrs.largeCommunities = Buffer.from(v);
        break;
      case Attr.As4Path: {
        // RFC 6793 §4.1: a NEW speaker ignores AS4_PATH from a NEW speaker.
        if (ctx.as4) { discarded.push('AS4_PATH on a 4-octet session'); break; }
        const p = parseAsPath(v, 4);
        if (!p || p.some((s) => s.type > 2)) discarded.push('malformed AS4_PATH');
        else as4Path = p;
        break;
      }
      case Attr.As4Aggregator:
        if (ctx.as4) { discarded.push('AS4_AGGREGATOR on a 4-octet session'); break; }
        if (len !== 8) discarded.push(`AS4_AGGREGATOR length ${len}`);
        else as4Aggregator = { as: v.readUInt32BE(0), id: ipv4ToString(v.readUInt32BE(4)) };
        break;
      default:
        break;
    }
  }
  if (as4Path && hasAsPath) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);
  if (as4Aggregator && attrs.aggregator?.as === 23456) attrs.aggregator = as4Aggregator;
  if (unknown.length) attrs.unknown = unknown;
  return { attrs: Object.freeze(attrs), withdrawReason, discarded, hasNextHop, hasOrigin, hasAsPath };
}

// ---------------------------------------------------------------------------------------------
// Building UPDATEs

const MAX = MAX_MESSAGE_LENGTH;

function nextHopBytes(afi: Afi, nextHop: string): Buffer {
  if (afi === AFI_IPV4) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(parseAddress(nextHop)?.words[0] ?? 0);
    return b;
  }
  return ipv6ToBytes(nextHop) ?? Buffer.alloc(16);
}

/**
 * Packs `prefixes` that share `attrBytes` (from encodeAttrs) into as few UPDATEs as fit in 4096
 * octets each. IPv4 unicast uses the classic NLRI field (attrBytes must hold NEXT_HOP); IPv6 uses
 * MP_REACH_NLRI, placed first as RFC 7606 §5.1 asks.
 */
export function buildAnnouncements(afi: Afi, attrBytes: Buffer, nextHop: string, prefixes: Iterable<PrefixWords>): Buffer[] {
  const out: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(MAX);
  if (afi === AFI_IPV4) {
    const fixed = HEADER_LENGTH + 4 + attrBytes.length;
    if (fixed > MAX) throw new Error('attributes do not fit in one UPDATE');
    let off = fixed;
    const flush = () => {
      if (off === fixed) return;
      writeHeader(scratch, 0, MsgType.Update, off);
      scratch.writeUInt16BE(0, HEADER_LENGTH);
      scratch.writeUInt16BE(attrBytes.length, HEADER_LENGTH + 2);
      attrBytes.copy(scratch, HEADER_LENGTH + 4);
      out.push(Buffer.from(scratch.subarray(0, off)));
      off = fixed;
    };
    for (const p of prefixes) {
      if (off + encodedPrefixSize(p) > MAX) flush();
      off = encodePrefix(p, scratch, off);
    }
    flush();
    return out;
  }
  const nh = nextHopBytes(afi, nextHop);
  // MP_REACH with an extended (2-octet) length so that it can hold up to ~4000 octets of NLRI.
  const mpHdr = 4 + 5 + nh.length;
  const fixed = HEADER_LENGTH + 4 + mpHdr + attrBytes.length;
  let off = fixed;
  const nlriStart = HEADER_LENGTH + 4 + mpHdr;
  const buf = Buffer.allocUnsafe(MAX);
  let nlriOff = 0;
  const nlri = Buffer.allocUnsafe(MAX);
  const flush = () => {
    if (nlriOff === 0) return;
    const mpLen = 5 + nh.length + nlriOff;
    const total = HEADER_LENGTH + 4 + 4 + mpLen + attrBytes.length;
    writeHeader(buf, 0, MsgType.Update, total);
    buf.writeUInt16BE(0, HEADER_LENGTH);
    buf.writeUInt16BE(4 + mpLen + attrBytes.length, HEADER_LENGTH + 2);
    let o = HEADER_LENGTH + 4;
    buf[o++] = FLAG_OPTIONAL | FLAG_EXTENDED;
    buf[o++] = Attr.MpReach;
    buf.writeUInt16BE(mpLen, o); o += 2;
    buf.writeUInt16BE(afi, o); o += 2;
    buf[o++] = SAFI_UNICAST;
    buf[o++] = nh.length;
    nh.copy(buf, o); o += nh.length;
    buf[o++] = 0;
    nlri.copy(buf, o, 0, nlriOff); o += nlriOff;
    attrBytes.copy(buf, o); o += attrBytes.length;
    out.push(Buffer.from(buf.subarray(0, o)));
    nlriOff = 0;
    off = fixed;
  };
  void nlriStart;
  for (const p of prefixes) {
    const sz = encodedPrefixSize(p);
    if (off + sz > MAX) flush();
    nlriOff = encodePrefix(p, nlri, nlriOff);
    off += sz;
  }
  flush();
  return out;
}

/** Withdrawals: the classic withdrawn-routes field for IPv4, MP_UNREACH_NLRI for IPv6. */
export function buildWithdrawals(afi: Afi, prefixes: Iterable<PrefixWords>): Buffer[] {
  const out: Buffer[] = [];
  const buf = Buffer.allocUnsafe(MAX);
  if (afi === AFI_IPV4) {
    const start = HEADER_LENGTH + 2;
    let off = start;
    const flush = () => {
      if (off === start) return;
      writeHeader(buf, 0, MsgType.Update, off + 2);
      buf.writeUInt16BE(off - start, HEADER_LENGTH);
      buf.writeUInt16BE(0, off);
      out.push(Buffer.from(buf.subarray(0, off + 2)));
      off = start;
    };
    for (const p of prefixes) {
      if (off + encodedPrefixSize(p) + 2 > MAX) flush();
      off = encodePrefix(p, buf, off);
    }
    flush();
    return out;
  }
  const start = HEADER_LENGTH + 4 + 4 + 3;
  let off = start;
  const flush = () => {
    if (off === start) return;
    writeHeader(buf, 0, MsgType.Update, off);
    buf.writeUInt16BE(0, HEADER_LENGTH);
    const mpLen = 3 + (off - start);
    buf.writeUInt16BE(4 + mpLen, HEADER_LENGTH + 2);
    let o = HEADER_LENGTH + 4;
    buf[o++] = FLAG_OPTIONAL | FLAG_EXTENDED;
    buf[o++] = Attr.MpUnreach;
    buf.writeUInt16BE(mpLen, o); o += 2;
    buf.writeUInt16BE(afi, o); o += 2;
    buf[o++] = SAFI_UNICAST;
    out.push(Buffer.from(buf.subarray(0, off)));
    off = start;
  };
  for (const p of prefixes) {
    if (off + encodedPrefixSize(p) > MAX) flush();
    off = encodePrefix(p, buf, off);
  }
  flush();
  return out;
}

export function buildEndOfRib(afi: Afi): Buffer {
  if (afi === AFI_IPV4) {
    const b = Buffer.alloc(HEADER_LENGTH + 4);
    writeHeader(b, 0, MsgType.Update, b.length);
    return b;
  }
  const b = Buffer.alloc(HEADER_LENGTH + 4 + 3 + 3);
  writeHeader(b, 0, MsgType.Update, b.length);
  b.writeUInt16BE(6, HEADER_LENGTH + 2);
  b[HEADER_LENGTH + 4] = FLAG_OPTIONAL;
  b[HEADER_LENGTH + 5] = Attr.MpUnreach;
  b[HEADER_LENGTH + 6] = 3;
  b.writeUInt16BE(afi, HEADER_LENGTH + 7);
  b[HEADER_LENGTH + 9] = SAFI_UNICAST;
  return b;
}
