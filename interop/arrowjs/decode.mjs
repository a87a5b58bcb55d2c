// Prints the row count, the schema and the first row's identity of one
// Arrow IPC stream file, as read by apache-arrow (not Recon's code).
import { readFileSync } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';

const table = tableFromIPC(readFileSync(process.argv[2]));
const lines = [`rows=${table.numRows}`];
for (const f of table.schema.fields) {
  lines.push(`${f.name}:${f.type}${f.nullable ? '?' : ''}`);
}
const first = table.get(0);
lines.push(`first=${first.source}/${first.metric}/${first.value}`);
console.log(lines.join('\n'));
