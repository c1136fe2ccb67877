// The memory of idle /graphqlws sockets: opens N sockets, each acknowledged, and prints
// the server's RSS before and after (read from /proc/<pid>/status, so run it on the
// server's machine).
// Usage: node idle.mjs <ws-url> <server-pid> [N=1000]
import { readFileSync } from 'node:fs';
import { Raw, fail, sleep } from './lib.mjs';

const [url, pid, count = '1000'] = process.argv.slice(2);
if (!pid) fail('usage: idle.mjs <ws-url> <server-pid> [N]');
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const warm = await Raw.open(url);
await warm.init();
await sleep(500);
const before = rss();
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  const raw = await Raw.open(url);
  await raw.init();
  sockets.push(raw);
}
await sleep(1000);
const after = rss();
const per = ((after - before) * 1024) / Number(count);
console.log(`sockets: ${count}, RSS before: ${before} kB, after: ${after} kB, delta: ${after - before} kB, per socket: ${Math.round(per)} bytes`);
for (const raw of sockets) raw.end();
warm.end();
process.exit(0);
