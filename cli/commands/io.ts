/** Reads a resource file (or stdin for `-`) and parses it into validated resources. */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../../src/errors.js';
import { Resource } from '../../src/model/resources.js';
import { parseResourceText } from '../../src/model/documents.js';

export function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read ${file === '-' ? 'standard input' : file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 'filename');
  }
}

export function readResources(file: string): Resource[] {
  return parseResourceText(readInput(file), file === '-' ? 'stdin' : file);
}
