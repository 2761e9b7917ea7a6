/**
 * A fast non-cryptographic hash (two 32-bit FNV-1a lanes with different seeds -> 16 hex chars).
 * Used for rule comments (one per rule, ~20k at a cold start with 1000 endpoints, where a
 * crypto hash per rule would cost tens of ms) and for short, stable names.
 */
export function hash64(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
