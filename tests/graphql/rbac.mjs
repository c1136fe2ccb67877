// Per-user RBAC of k8sPodLogs (`get pods/log`) and k8sHelmReleaseStatus (`list`/`watch`
// secrets) for an admin: refused with FORBIDDEN before a binding, served after it.
// Usage: node rbac.mjs <phase: before|after> <ws-url> <token> <pod>
import { Sub, assert, assertEqual, client, fail, step } from './lib.mjs';

const [phase, url, token, pod] = process.argv.slice(2);
if (!pod) fail('usage: rbac.mjs <before|after> <ws-url> <token> <pod>');

const gql = client(url, token);
const logs = `subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "${pod}", tailLines: 2, follow: false) { message } }`;
const helm = 'subscription { k8sHelmReleaseStatus(cluster: "test", namespace: "shop", name: "demo") { status } }';

if (phase === 'before') {
  await step('without a binding, logs and helm releases are FORBIDDEN', async () => {
    const refused = await new Sub(gql, logs).error('logs refused');
    assertEqual(refused[0].extensions.code, 'FORBIDDEN', 'logs code');
    assert(refused[0].message.includes('pods/log'), refused[0].message);
    const secrets = await new Sub(gql, helm).error('helm refused');
    assertEqual(secrets[0].extensions.code, 'FORBIDDEN', 'helm code');
    assert(secrets[0].message.includes('secrets'), secrets[0].message);
  });
} else {
  await step('bound to a role with get pods/log in the namespace, the log is served', async () => {
    const sub = new Sub(gql, logs);
    await sub.next('line 1');
    await sub.next('line 2');
    await sub.complete();
  });
}
await gql.dispose();
process.exit(0);
