// k8sWorkloadStatus through a rollout and a crash loop in the sim: the current status
// at subscribe, a record only when ready/desired/status/restarts/image change, and
// `complete` when the workload is deleted.
// Usage: node workload.mjs <ws-url> <sim-url>
import { Sub, assertEqual, client, fail, simApply, simDelete, simNamespace, sleep, step } from './lib.mjs';

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
const crashing = (restarts) => ({
  phase: 'Running',
  containerStatuses: [{ name: 'app', ready: false, restartCount: restarts, state: { waiting: { reason: 'CrashLoopBackOff' } } }],
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

await step('a pod in CrashLoopBackOff is ERROR with its restarts', async () => {
  await simApply(sim, pod('web-b', { app: 'web' }), crashing(3));
  await simApply(sim, deployment('web:2'), { ...rollout(2, 1), observedGeneration: 2 });
  let next = await record('the crash loop');
  while (next.status !== 'ERROR' || next.ready !== 1) next = await record('ERROR with one ready');
  assertEqual([next.status, next.restarts, next.ready], ['ERROR', 3, 1], 'crash loop');
  await simApply(sim, pod('web-b', { app: 'web' }), crashing(4));
  next = await record('one more restart');
  assertEqual([next.status, next.restarts], ['ERROR', 4], 'restarts counted');
});

await step('recovery is OK; deleting the workload completes the operation', async () => {
  await simApply(sim, pod('web-b', { app: 'web' }), running(4));
  await simApply(sim, deployment('web:2'), { ...rollout(2, 2), observedGeneration: 2 });
  let next = await record('recovered');
  while (next.status !== 'OK') next = await record('OK');
  assertEqual([next.status, next.restarts], ['OK', 4], 'recovered');
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
