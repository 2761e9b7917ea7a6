/**
 * The little protobuf the etcd KV API needs (varints, length-delimited fields), for the CLI's
 * gRPC client (etcd-h2.ts). Encoding builds a byte array field by field; decoding walks a buffer
 * and hands each field to a callback, so a 10 000-key range decodes without intermediate objects.
 */
export class PbWriter {
  private parts: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }

  private varint(v: bigint | number): void {
    let n = BigInt(v);
    if (n < 0n) n = (1n << 64n) + n;
    const bytes: number[] = [];
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) byte |= 0x80;
      bytes.push(byte);
    } while (n > 0n);
    this.push(Buffer.from(bytes));
  }

  uint(field: number, v: number | bigint | string | undefined): this {
    if (v === undefined || v === 0 || v === '0' || v === 0n) return this;
    this.varint((field << 3) | 0);
    this.varint(typeof v === 'string' ? BigInt(v) : v);
    return this;
  }

  bool(field: number, v: boolean | undefined): this {
    return v ? this.uint(field, 1) : this;
  }

  bytes(field: number, v: Buffer | string | undefined): this {
    if (v === undefined) return this;
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  message(field: number, w: PbWriter): this {
    return this.bytes(field, w.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

export type FieldValue = { wire: 0; num: number } | { wire: 2; start: number; end: number };

/** Calls `onField(field, value)` for every field of the message in buf[start, end). */
export function readFields(buf: Buffer, start: number, end: number, onField: (field: number, v: FieldValue) => void): void {
  let pos = start;
  const varint = (): number => {
    // Numbers above 2^53 lose precision; etcd revisions and counts stay far below that.
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
  };
  while (pos < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) onField(field, { wire: 0, num: varint() });
    else if (wire === 2) {
      const len = varint();
      onField(field, { wire: 2, start: pos, end: pos + len });
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}
