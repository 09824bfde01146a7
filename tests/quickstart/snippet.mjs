// Prints one snippet of a markdown page: the fenced code block right after the line `<!-- quickstart:NAME -->`.
// Usage: node snippet.mjs docs/quickstart.md NAME. Exits 1, naming what is missing, when there is no such snippet.
import { readFileSync } from 'node:fs';

const [file, name] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n');
const marker = lines.findIndex((line) => line.trim() === `<!-- quickstart:${name} -->`);
if (marker < 0) {
  console.error(`${file}: no <!-- quickstart:${name} --> marker`);
  process.exit(1);
}
const open = lines[marker + 1]?.match(/^(`{3,})/);
const close = open && lines.findIndex((line, i) => i > marker + 1 && line.startsWith(open[1]) && line.trim() === open[1]);
if (!open || close < 0) {
  console.error(`${file}: <!-- quickstart:${name} --> is not followed by a fenced code block`);
  process.exit(1);
}
process.stdout.write(lines.slice(marker + 2, close).join('\n') + '\n');
