// k8sEvents shows what a user did with kubectl: a Deployment applied server-side, then
// `kubectl scale`, arrive as the sim's controllers' upstream Events
// (ScalingReplicaSet "Scaled up replica set web-… from 1 to 4", SuccessfulCreate…).
// Usage: node scale.mjs <ws-url> <kubectl> <kubeconfig> <manifest>
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Sub, assert, assertEqual, client, fail, sleep, step } from './lib.mjs';

const [url, kubectlBin, kubeconfig, manifest] = process.argv.slice(2);
if (!manifest) fail('usage: scale.mjs <ws-url> <kubectl> <kubeconfig> <manifest>');

const run = promisify(execFile);
async function kubectl(...args) {
  try {
    return (await run(kubectlBin, args, { env: { ...process.env, KUBECONFIG: kubeconfig } })).stdout;
  } catch (error) {
    throw new Error(`kubectl ${args.join(' ')} failed: ${error.stderr || error}`);
  }
}

const gql = client(url);
let sub;
const record = async (what) => (await sub.next(what)).k8sEvents;

/// Records until one has `reason` and a message starting with `prefix`; returns it.
async function until(reason, prefix) {
  for (;;) {
    const r = await record(`${reason} ${prefix}`);
    if (r.reason === reason && r.message.startsWith(prefix)) return r;
  }
}

await step('subscribed, kubectl apply --server-side creates web with one replica', async () => {
  sub = new Sub(gql, `subscription {
    k8sEvents(cluster: "test", namespace: "default") { id level namespace involvedObject reason message count }
  }`);
  await sleep(300);
  const out = await kubectl('apply', '--server-side', '-f', manifest);
  assert(out.includes('serverside-applied'), out);
  const scaled = await until('ScalingReplicaSet', 'Scaled up replica set web-');
  assert(/^Scaled up replica set web-\w+ from 0 to 1$/.test(scaled.message), scaled.message);
  assertEqual(scaled.level, 'INFO', 'level of a Normal event');
  const created = await until('SuccessfulCreate', 'Created pod: web-');
  assert(created.involvedObject.startsWith('ReplicaSet/web-'), created.involvedObject);
});

await step('kubectl scale --replicas=4 is ScalingReplicaSet from 1 to 4', async () => {
  const out = await kubectl('scale', 'deployment/web', '--replicas=4');
  assert(out.includes('deployment.apps/web scaled'), out);
  const scaled = await until('ScalingReplicaSet', 'Scaled up replica set web-');
  assert(/^Scaled up replica set web-\w+ from 1 to 4$/.test(scaled.message), scaled.message);
  assertEqual(scaled.involvedObject, 'Deployment/web', 'involvedObject');
});

gql.dispose();
