// k8sWorkloadStatus through a rollout, a crash loop and a scale to zero in the sim: the
// current status at subscribe, a record only when ready/desired/status/restarts/image
// change, one steady WARN while restarts climb and OK once the restart window passes
// ([graphql] restart_window = 3s), 0/0 OK, and `complete` when the workload is deleted.
// Usage: node workload.mjs <ws-url> <sim-url>
import { Sub, assert, assertEqual, client, fail, simApply, simDelete, simNamespace, sleep, step } from './lib.mjs';

const [url, sim] = process.argv.slice(2);
if (!sim) fail('usage: workload.mjs <ws-url> <sim-url>');

const deployment = (image) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', team: 'a' } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image }] } },
  },
});
const pod = (name, labels) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', labels },
  spec: { containers: [{ name: 'app', image: 'web:1' }] },
});
const running = (restarts) => ({
  phase: 'Running',
  containerStatuses: [{ name: 'app', ready: true, restartCount: restarts, state: { running: { startedAt: '2026-05-01T12:00:00Z' } } }],
});
const justCrashed = () => ({ terminated: { exitCode: 2, reason: 'Error', finishedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } });
const crashing = (restarts) => ({
  phase: 'Running',
  containerStatuses: [{ name: 'app', ready: false, restartCount: restarts, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: justCrashed() }],
});
const rollout = (updated, ready) => ({
  observedGeneration: 1, replicas: 2, updatedReplicas: updated, readyReplicas: ready, availableReplicas: ready,
});

const QUERY = `subscription {
  k8sWorkloadStatus(cluster: "test", namespace: "shop", kind: DEPLOYMENT, name: "web") {
    id kind name namespace ready desired status restarts image labels
  }
}`;

const gql = client(url);
let sub;
const record = async (what) => (await sub.next(what)).k8sWorkloadStatus;

await step('the status at subscribe: a rollout in progress is PENDING', async () => {
  await simNamespace(sim, 'shop');
  await simApply(sim, deployment('web:1'), rollout(1, 1));
  await simApply(sim, pod('web-a', { app: 'web' }), running(0));
  await simApply(sim, pod('other', { app: 'db' }), crashing(9));
  sub = new Sub(gql, QUERY);
  const first = await record('the first record');
  assertEqual(
    [first.kind, first.name, first.namespace, first.ready, first.desired, first.status, first.restarts, first.image],
    ['DEPLOYMENT', 'web', 'shop', 1, 2, 'PENDING', 0, 'web:1'],
    'first record (the db pod is not selected)',
  );
  assertEqual(first.labels, { app: 'web', team: 'a' }, 'labels');
  assertEqual(first.id, 'test/shop/deployments/web', 'id');
});

await step('an unrelated change sends nothing; the rollout finishing is OK', async () => {
  await simApply(sim, { ...deployment('web:1'), metadata: { ...deployment('web:1').metadata, annotations: { note: 'x' } } });
  await simApply(sim, pod('web-b', { app: 'web' }), running(0));
  await simApply(sim, deployment('web:1'), rollout(2, 2));
  const ok = await record('the finished rollout');
  assertEqual([ok.ready, ok.desired, ok.status, ok.restarts], [2, 2, 'OK', 0], 'rolled out');
});

await step('a new image rolls out: PENDING with the new image, then OK', async () => {
  await simApply(sim, { ...deployment('web:2'), metadata: { ...deployment('web:2').metadata, generation: 2 } });
  await simApply(sim, deployment('web:2'), { ...rollout(1, 2), observedGeneration: 2 });
  let next = await record('the new image');
  while (next.status !== 'PENDING') next = await record('PENDING');
  assertEqual([next.image, next.status], ['web:2', 'PENDING'], 'rolling');
  await simApply(sim, deployment('web:2'), { ...rollout(2, 2), observedGeneration: 2 });
  next = await record('OK again');
  assertEqual([next.image, next.status, next.ready], ['web:2', 'OK', 2], 'rolled out again');
});

await step('a crash loop is one steady WARN while restarts climb, with no duplicate record', async () => {
  // The kubelet's cycle, faster: crashed and backing off, running and ready, crashed…
  const seen = [];
  for (let restarts = 3; restarts <= 8; restarts++) {
    await simApply(sim, pod('web-b', { app: 'web' }), restarts % 2 ? crashing(restarts) : { ...running(restarts), containerStatuses: [{ ...running(restarts).containerStatuses[0], lastState: justCrashed() }] });
    await simApply(sim, deployment('web:2'), { ...rollout(2, restarts % 2 ? 1 : 2), observedGeneration: 2 });
    await sleep(150);
  }
  let next = await record('the crash loop');
  for (;;) {
    seen.push(next);
    if (next.restarts === 8) break;
    next = await record('restarts climbing');
  }
  const statuses = [...new Set(seen.map((r) => r.status))];
  assertEqual(statuses, ['WARN'], `statuses while restarts climb (${JSON.stringify(seen.map((r) => [r.ready, r.restarts, r.status]))})`);
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1], seen[i]];
    assert([a.ready, a.desired, a.status, a.restarts, a.image].join() !== [b.ready, b.desired, b.status, b.restarts, b.image].join(), `a duplicate record: ${JSON.stringify(b)}`);
  }
});

await step('the restart window passes with no restart: OK, with its restarts', async () => {
  await simApply(sim, deployment('web:2'), { ...rollout(2, 2), observedGeneration: 2 });
  const started = Date.now();
  let next = await record('OK after the window');
  while (next.status !== 'OK') next = await record('OK');
  assertEqual([next.status, next.ready, next.restarts], ['OK', 2, 8], 'recovered');
  assert(Date.now() - started >= 1000, `OK after ${Date.now() - started} ms: before the 3 s window ended`);
  await sub.quiet(1500, 'nothing more while nothing changes');
});

await step('scaled to 0/0 is OK (the desired state is reached); deleting it completes', async () => {
  await simDelete(sim, '/api/v1/namespaces/shop/pods/web-a');
  await simDelete(sim, '/api/v1/namespaces/shop/pods/web-b');
  const scaled = deployment('web:2');
  await simApply(sim, { ...scaled, metadata: { ...scaled.metadata, generation: 3 }, spec: { ...scaled.spec, replicas: 0 } },
    { observedGeneration: 3, replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0 });
  let next = await record('scaled to zero');
  while (next.desired !== 0 || next.restarts !== 0) next = await record('0/0');
  assertEqual([next.ready, next.desired, next.status], [0, 0, 'OK'], '0/0');
  await simDelete(sim, '/apis/apps/v1/namespaces/shop/deployments/web');
  await sub.complete('complete after the delete');
});

await step('a workload that does not exist is NOT_FOUND', async () => {
  const fresh = client(url);
  const missing = new Sub(fresh, QUERY.replace('"web"', '"nothing-here"'));
  const errors = await missing.error();
  assertEqual(errors[0].extensions.code, 'NOT_FOUND', 'code');
  await fresh.dispose();
});

await sleep(10);
await gql.dispose();
process.exit(0);
