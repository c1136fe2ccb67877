// k8sHelmReleaseStatus against real helm runs on the sim: install, upgrade and
// uninstall observed as DEPLOYED v1 → v2 (v1 SUPERSEDED) → UNINSTALLED + complete,
// then a corrupt release Secret → an error naming it while the server keeps serving.
// Usage: node helm.mjs <ws-url> <sim-url> <helm> <kubeconfig> <chart-dir> <helm-home>
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Sub, assert, assertEqual, client, fail, simApply, step } from './lib.mjs';

const [url, sim, helmBin, kubeconfig, chart, home] = process.argv.slice(2);
if (!home) fail('usage: helm.mjs <ws-url> <sim-url> <helm> <kubeconfig> <chart-dir> <helm-home>');

const run = promisify(execFile);
async function helm(...args) {
  const env = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_DATA_HOME: `${home}/data`,
  };
  try {
    await run(helmBin, args, { env });
  } catch (error) {
    throw new Error(`helm ${args.join(' ')} failed: ${error.stderr || error}`);
  }
}

const query = (name) => `subscription {
  k8sHelmReleaseStatus(cluster: "test", namespace: "default", name: "${name}") {
    id name namespace chart chartVersion appVersion revision status firstDeployed lastDeployed description
  }
}`;

const gql = client(url);
const record = async (sub, what) => (await sub.next(what)).k8sHelmReleaseStatus;

/// Records until `done(record)` holds; returns them all.
async function until(sub, what, done) {
  const seen = [];
  for (;;) {
    const r = await record(sub, what);
    seen.push(r);
    if (done(r, seen)) return seen;
  }
}
const has = (seen, revision, status) => seen.some((r) => r.revision === revision && r.status === status);

let sub;

await step('subscribed before the install, helm install is DEPLOYED v1', async () => {
  sub = new Sub(gql, query('demo'));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await helm('install', 'demo', chart);
  const seen = await until(sub, 'DEPLOYED v1', (r) => r.revision === 1 && r.status === 'DEPLOYED');
  const deployed = seen[seen.length - 1];
  assertEqual(
    [deployed.id, deployed.name, deployed.namespace, deployed.chart, deployed.chartVersion, deployed.appVersion],
    ['default/demo', 'demo', 'default', 'demo', '0.1.0', '1.0'],
    'release fields',
  );
  assert(deployed.firstDeployed && deployed.lastDeployed, `deployed times: ${JSON.stringify(deployed)}`);
  assertEqual(deployed.description, 'Install complete', 'description');
  for (const r of seen.slice(0, -1)) assertEqual([r.revision, r.status], [1, 'PENDING'], 'before DEPLOYED');
});

await step('helm upgrade is DEPLOYED v2 with v1 SUPERSEDED', async () => {
  await helm('upgrade', 'demo', chart, '--set', 'x=two');
  const seen = await until(sub, 'v2 DEPLOYED and v1 SUPERSEDED', (_, all) => has(all, 2, 'DEPLOYED') && has(all, 1, 'SUPERSEDED'));
  assertEqual(seen.find((r) => r.revision === 2 && r.status === 'DEPLOYED').description, 'Upgrade complete', 'description');
});

let late;
await step('a late subscriber gets the latest revision at subscribe', async () => {
  late = new Sub(gql, query('demo'));
  const now = await record(late, 'the state at subscribe');
  assertEqual([now.revision, now.status], [2, 'DEPLOYED'], 'latest');
});

await step('helm uninstall is UNINSTALLED, then complete, for every subscriber', async () => {
  await helm('uninstall', 'demo');
  for (const [name, s] of [['first', sub], ['late', late]]) {
    const seen = await until(s, `${name}: UNINSTALLED`, (r) => r.status === 'UNINSTALLED');
    assertEqual(seen[seen.length - 1].revision, 2, `${name}: the last revision`);
    await s.complete(`${name}: complete after UNINSTALLED`);
  }
});

await step('a corrupt release secret is an error naming it; the server keeps serving', async () => {
  await simApply(sim, {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'helm.sh/release.v1',
    metadata: { name: 'sh.helm.release.v1.broken.v1', namespace: 'default', labels: { owner: 'helm', name: 'broken', status: 'deployed', version: '1' } },
    // gzip's magic bytes, then no gzip: base64 (helm's) inside base64 (the API's).
    data: { release: Buffer.from(Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08]), Buffer.from('garbage')]).toString('base64')).toString('base64') },
  });
  const errors = await new Sub(gql, query('broken')).error('the corrupt secret');
  assertEqual(errors[0].extensions.code, 'INVALID_RELEASE', 'code');
  assert(errors[0].message.includes('default/sh.helm.release.v1.broken.v1'), errors[0].message);
  // The same socket and the server still answer.
  const again = await new Sub(gql, query('broken')).error('the corrupt secret again');
  assertEqual(again[0].extensions.code, 'INVALID_RELEASE', 'code again');
  const clusters = new Sub(gql, '{ clusters { name } }');
  assertEqual((await clusters.next('clusters')).clusters, [{ name: 'test' }], 'a query after the error');
});

await gql.dispose();
process.exit(0);
