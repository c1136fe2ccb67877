// k8sPodLogs against the sim's generated logs: the backfill count (default 200,
// tailLines), completion without follow, live lines with follow (two followers, one
// late, sharing one live tail), kubelet timestamps and levels on the sim's five log
// formats, and the ends: a deleted pod, a finished container, unknown names.
// Usage: node logs.mjs <ws-url> <sim-url>
import { Sub, assert, assertEqual, client, fail, simApply, simDelete, simNamespace, sleep, step } from './lib.mjs';

const [url, sim] = process.argv.slice(2);
if (!sim) fail('usage: logs.mjs <ws-url> <sim-url>');

const ago = (seconds) => new Date(Date.now() - seconds * 1000).toISOString();
const pod = (name, containers) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop' },
  spec: { containers: containers.map((c) => ({ name: c, image: 'app:1' })) },
});
const running = (containers) => ({
  phase: 'Running',
  containerStatuses: containers.map((c) => ({ name: c, ready: true, restartCount: 0, state: { running: { startedAt: ago(7200) } } })),
});
const finished = (c) => ({
  phase: 'Succeeded',
  containerStatuses: [{ name: c, ready: false, restartCount: 0, state: { terminated: { exitCode: 0, startedAt: ago(600), finishedAt: ago(60) } } }],
});

const query = (args) => `subscription { k8sPodLogs(cluster: "test", namespace: "shop", ${args}) { pod container timestamp level message } }`;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

const gql = client(url);

/// Every record until `complete`.
async function all(sub, what) {
  const records = [];
  for (;;) {
    const item = await sub.item(what);
    if (item.complete) return records;
    if (!item.next) {
      const e = item.error;
      throw new Error(`${what}: expected records and complete, got ${Array.isArray(e) ? JSON.stringify(e) : `${e} ${e && e.code} ${e && e.reason}`}`);
    }
    records.push(item.next.data.k8sPodLogs);
  }
}

/// The sim's formats, and the level each one must get.
function expected(message) {
  let m = message.match(/^\{"level":"(\w+)"/);
  if (m) return ['json', m[1]];
  m = message.match(/^level=(\w+) /);
  if (m) return ['logfmt', m[1]];
  m = message.match(/^\[(\w+)\] /);
  if (m) return ['bracket', m[1].toLowerCase()];
  if (message.startsWith('panic: ')) return ['panic', 'error'];
  if (message.includes('(errors=0, line ')) return ['plain', 'info'];
  throw new Error(`a line in no known format: ${message}`);
}
const LEVELS = { error: 'ERROR', warn: 'WARN', info: 'INFO', debug: 'INFO' };

function checkTimestamps(records, what) {
  for (const r of records) assert(TIMESTAMP.test(r.timestamp), `${what}: timestamp ${r.timestamp}`);
  for (let i = 1; i < records.length; i++) {
    assert(records[i - 1].timestamp < records[i].timestamp, `${what}: timestamps increase (${records[i - 1].timestamp}, ${records[i].timestamp})`);
  }
}

await step('setup: pods with two-hour-old logs, one finished container', async () => {
  await simNamespace(sim, 'shop');
  await simApply(sim, pod('app', ['web', 'sidecar']), running(['web', 'sidecar']));
  for (const name of ['b', 'c']) await simApply(sim, pod(name, ['main']), running(['main']));
  await simApply(sim, pod('done', ['job']), finished('job'));
});

await step('the default backfill is 200 lines of the first container, then complete without follow', async () => {
  const records = await all(new Sub(gql, query('pod: "app", follow: false')), 'the backfill');
  assertEqual(records.length, 200, 'lines');
  assertEqual([...new Set(records.map((r) => `${r.pod}/${r.container}`))], ['app/web'], 'the first container');
  checkTimestamps(records, 'backfill');
});

await step('tailLines narrows the backfill; container picks another one', async () => {
  const five = await all(new Sub(gql, query('pod: "app", container: "sidecar", tailLines: 5, follow: false')), 'five lines');
  assertEqual(five.length, 5, 'lines');
  assertEqual(five[0].container, 'sidecar', 'container');
  const none = await all(new Sub(gql, query('pod: "app", tailLines: 0, follow: false')), 'no lines');
  assertEqual(none.length, 0, 'tailLines: 0');
});

await step('timestamps and levels on all five of the sim\'s log formats', async () => {
  const seen = {};
  for (const name of ['app', 'b', 'c']) {
    const records = await all(new Sub(gql, query(`pod: "${name}", tailLines: 1000, follow: false`)), `${name}'s log`);
    assert(records.length >= 900, `${name}: ${records.length} lines`);
    checkTimestamps(records, name);
    for (const r of records) {
      const [format, level] = expected(r.message);
      assertEqual(r.level, LEVELS[level], `level of ${JSON.stringify(r.message)}`);
      seen[format] = (seen[format] || 0) + 1;
    }
  }
  assertEqual(Object.keys(seen).sort(), ['bracket', 'json', 'logfmt', 'panic', 'plain'], `formats seen ${JSON.stringify(seen)}`);
});

await step('follow: backfill then live lines; a late follower backfills for itself and joins the same tail', async () => {
  const first = new Sub(gql, query('pod: "app", tailLines: 2'));
  const backfill = [(await first.next('backfill 1')).k8sPodLogs, (await first.next('backfill 2')).k8sPodLogs];
  const live = (await first.next('a live line')).k8sPodLogs;
  checkTimestamps([...backfill, live], 'follow');
  const late = new Sub(gql, query('pod: "app", tailLines: 3'));
  const lateLines = [];
  for (let i = 0; i < 4; i++) lateLines.push((await late.next(`late line ${i}`)).k8sPodLogs);
  checkTimestamps(lateLines, 'late follower');
  // Both see the same live line after the late one's backfill.
  let next = (await first.next('the shared live line')).k8sPodLogs;
  while (next.timestamp < lateLines[3].timestamp) next = (await first.next('the shared live line')).k8sPodLogs;
  assertEqual(next.timestamp, lateLines[3].timestamp, 'the same live line reaches both');
  first.dispose();
  late.dispose();
  await sleep(500);
});

await step('a deleted pod completes a follow', async () => {
  const sub = new Sub(gql, query('pod: "b", tailLines: 1'));
  await sub.next('a line');
  await simDelete(sim, '/api/v1/namespaces/shop/pods/b');
  for (;;) {
    const item = await sub.item('complete after the delete');
    if (item.complete) break;
    if (!item.next) throw new Error(`expected complete, got ${JSON.stringify(item.error)}`);
  }
});

await step('a finished container completes after its backfill even with follow', async () => {
  const records = await all(new Sub(gql, query('pod: "done", tailLines: 3, follow: true')), 'the finished log');
  assertEqual(records.length, 3, 'lines');
});

await step('an unknown pod or container is an error naming it', async () => {
  const pod404 = await new Sub(gql, query('pod: "nothing-here"')).error('unknown pod');
  assertEqual(pod404[0].extensions.code, 'NOT_FOUND', 'code');
  assert(pod404[0].message.includes('shop/nothing-here'), pod404[0].message);
  const c404 = await new Sub(gql, query('pod: "app", container: "nope"')).error('unknown container');
  assertEqual(c404[0].extensions.code, 'NOT_FOUND', 'code');
  assert(c404[0].message.includes('"nope"') && c404[0].message.includes('web, sidecar'), c404[0].message);
});

await gql.dispose();
process.exit(0);
