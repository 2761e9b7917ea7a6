/** The etcd range end that selects every key starting with `prefix`: the prefix with its last byte + 1. */
export function prefixEnd(prefix: string): string {
  const buf = Buffer.from(prefix, 'utf8');
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i]! += 1;
      return end.toString('latin1');
    }
  }
  return '\0';
}
