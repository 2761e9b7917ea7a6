/**
 * Reads resource files: YAML or JSON, one document, a list (`kind: List` with `items`, or a bare
 * array), or several YAML documents separated by `---`. Every document is validated before
 * anything is written, and an error names the document (file, index) and the field.
 */
import { ValidationError } from '../errors.js';
import { Resource, validateResource } from './resources.js';
import { fromV3 } from './v3.js';

export function parseResourceText(text: string, source: string): Resource[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  const docs = YAML.parseAllDocuments(text);
  const raw: unknown[] = [];
  for (const [i, d] of docs.entries()) {
    if (d.errors.length) {
      const e = d.errors[0]!;
      const pos = e.linePos?.[0];
      throw new ValidationError(
        `${source}: invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''} (document ${i + 1}): ${e.message.split('\n')[0]}`,
        'yaml',
      );
    }
    const js = d.toJS({ maxAliasCount: 100 }) as unknown;
    if (js === null || js === undefined) continue;
    raw.push(js);
  }
  const flat: unknown[] = [];
  for (const doc of raw) {
    if (Array.isArray(doc)) flat.push(...doc);
    else if (doc && typeof doc === 'object' && /^list$/i.test(String((doc as { kind?: unknown }).kind ?? ''))) {
      const items = (doc as { items?: unknown }).items;
      if (!Array.isArray(items)) throw new ValidationError(`${source}: a List needs an 'items' list`, 'items');
      flat.push(...items);
    } else flat.push(doc);
  }
  if (flat.length === 0) throw new ValidationError(`${source}: no resources found`, 'file');
  return flat.map((doc, i) => {
    const where = flat.length > 1 ? `${source}[${i}]` : source;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ValidationError(`${where}: a resource must be a mapping with apiVersion, kind, metadata and spec`, 'resource');
    const d = doc as Record<string, unknown>;
    const v1 = d.apiVersion === 'projectcalico.org/v3' ? fromV3(d, where) : d;
    return validateResource(v1, where);
  });
}
