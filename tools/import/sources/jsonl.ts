/**
 * A JSON Lines file with one `installed` payload per line, for stores the
 * tool has no reader for: export them in this shape. Blank lines are skipped.
 * The file carries no timestamps or uninstalled state.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseStoredJson, type Source } from '../source';

export async function openJsonl(file: string): Promise<Source> {
  await access(file);
  return {
    description: `JSON Lines file ${file}`,
    async *rows() {
      const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
      let lineNumber = 0;
      for await (const line of lines) {
        lineNumber += 1;
        if (line.trim() === '') {
          continue;
        }
        const location = `line ${lineNumber}`;
        const parsed = parseStoredJson(line, 'the line');
        if (!parsed.ok) {
          yield { location, clientKey: undefined, content: { kind: 'unreadable', reason: parsed.reason } };
          continue;
        }
        const clientKey = (parsed.value as { clientKey?: unknown }).clientKey;
        yield {
          location,
          clientKey: typeof clientKey === 'string' ? clientKey : undefined,
          content: { kind: 'payload', payload: parsed.value, state: 'installed' },
        };
      }
    },
    async close() {},
  };
}
