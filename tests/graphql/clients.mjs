// What real studio clients tripped on: `k8sPodLogs` defaults for omitted and null
// variables, object names with dots, messages past the size limit, a token inside the
// `exp` leeway, and server pings on an idle socket.
// Usage: node clients.mjs defaults <ws-url> <sim-url>
//        node clients.mjs names <ws-url> <sim-url>
//        node clients.mjs size <ws-url>
//        node clients.mjs leeway <ws-url> <token-in-leeway> <token-past-leeway>
//        node clients.mjs pings <ws-url>                       ([graphql] ping_interval = 1s)
import WebSocket from 'ws';
import { Raw, Sub, assert, assertEqual, client, fail, simApply, simNamespace, sleep, step } from './lib.mjs';

const [mode, url, ...rest] = process.argv.slice(2);
const ago = (seconds) => new Date(Date.now() - seconds * 1000).toISOString();
const pod = (name, labels = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', labels },
  spec: { containers: [{ name: 'main', image: 'app:1' }] },
});
const running = {
  phase: 'Running',
  containerStatuses: [{ name: 'main', ready: true, restartCount: 0, state: { running: { startedAt: ago(7200) } } }],
};

/// Records until `n` arrived (failing on an error or an early complete).
async function records(sub, n, what) {
  const out = [];
  while (out.length < n) out.push(await sub.next(`${what} ${out.length + 1}`));
  return out;
}

if (mode === 'defaults') {
  const [sim] = rest;
  const LOGS = `subscription Logs($tailLines: Int, $follow: Boolean) {
    k8sPodLogs(cluster: "test", namespace: "shop", pod: "app", tailLines: $tailLines, follow: $follow) { message }
  }`;
  const gql = client(url);
  await step('setup: a pod with two-hour-old logs', async () => {
    await simNamespace(sim, 'shop');
    await simApply(sim, pod('app'), running);
  });
  for (const [name, variables] of [['omitted', {}], ['null', { tailLines: null, follow: null }]]) {
    await step(`$tailLines and $follow ${name}: 200 lines of backfill, then the live tail`, async () => {
      const sub = new Sub(gql, LOGS, variables);
      await records(sub, 200, 'backfill line');
      // follow = true: more lines arrive (the backfill was 200, not everything).
      await sub.next('a live line');
      sub.dispose();
    });
  }
  await step('the schema declares Int = 200 and Boolean = true', async () => {
    const sub = new Sub(gql, `{ __type(name: "SubscriptionRoot") { fields { name args { name defaultValue type { kind name } } } } }`);
    const data = await sub.next('the introspection');
    const logs = data.__type.fields.find((f) => f.name === 'k8sPodLogs');
    const arg = (n) => logs.args.find((a) => a.name === n);
    assertEqual([arg('tailLines').type.kind, arg('tailLines').type.name, arg('tailLines').defaultValue], ['SCALAR', 'Int', '200'], 'tailLines');
    assertEqual([arg('follow').type.kind, arg('follow').type.name, arg('follow').defaultValue], ['SCALAR', 'Boolean', 'true'], 'follow');
  });
  await gql.dispose();
} else if (mode === 'names') {
  const [sim] = rest;
  const gql = client(url);
  const DOTTED_POD = 'etcd-ip-10-0-1-23.eu-west-1.compute.internal';
  await step('a pod named with dots streams its log', async () => {
    await simNamespace(sim, 'shop');
    await simApply(sim, pod(DOTTED_POD), running);
    const sub = new Sub(gql, `subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "${DOTTED_POD}", tailLines: 2, follow: false) { pod message } }`);
    const [first] = await records(sub, 2, 'line');
    assertEqual(first.k8sPodLogs.pod, DOTTED_POD, 'pod');
    await sub.complete('complete after the backfill');
  });
  await step('a deployment named with dots streams its status', async () => {
    await simApply(sim, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web.v2', namespace: 'shop' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web.v2' } },
        template: { metadata: { labels: { app: 'web.v2' } }, spec: { containers: [{ name: 'main', image: 'web:2' }] } },
      },
    }, { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 });
    const sub = new Sub(gql, `subscription { k8sWorkloadStatus(cluster: "test", namespace: "shop", kind: DEPLOYMENT, name: "web.v2") { id name status } }`);
    const { k8sWorkloadStatus: record } = await sub.next('the status');
    assertEqual([record.id, record.name, record.status], ['test/shop/deployments/web.v2', 'web.v2', 'OK'], 'record');
    sub.dispose();
  });
  await step('a Helm release named with dots streams its status', async () => {
    const release = {
      name: 'my.rel', namespace: 'shop', version: 1,
      info: { status: 'deployed', first_deployed: '2026-05-01T12:00:00Z', last_deployed: '2026-05-01T12:00:00Z', description: 'Install complete' },
      chart: { metadata: { name: 'demo', version: '0.1.0', appVersion: '1.0' } },
    };
    // Secret data is base64 in the API, and Helm's own encoding is base64 too.
    const twice = Buffer.from(Buffer.from(JSON.stringify(release)).toString('base64')).toString('base64');
    await simApply(sim, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'helm.sh/release.v1',
      metadata: { name: 'sh.helm.release.v1.my.rel.v1', namespace: 'shop', labels: { owner: 'helm', name: 'my.rel', status: 'deployed', version: '1' } },
      data: { release: twice },
    });
    const sub = new Sub(gql, `subscription { k8sHelmReleaseStatus(cluster: "test", namespace: "shop", name: "my.rel") { id name revision status } }`);
    const { k8sHelmReleaseStatus: record } = await sub.next('the release');
    assertEqual([record.id, record.name, record.revision, record.status], ['shop/my.rel', 'my.rel', 1, 'DEPLOYED'], 'record');
    sub.dispose();
  });
  const refused = async (query, what, pattern) => {
    const errors = await new Sub(gql, query).error(what);
    assertEqual(errors[0].extensions.code, 'BAD_REQUEST', `${what}: code`);
    assert(pattern.test(errors[0].message), `${what}: ${errors[0].message}`);
  };
  await step('names Kubernetes refuses are still BAD_REQUEST, by each resource\'s rule', async () => {
    const long = `${'a'.repeat(250)}.bcd`;
    await refused(`subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "${long}") { message } }`,
      'a 254-character pod name', /^pod: must be at most 253 characters/);
    await refused(`subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "Web.v2") { message } }`,
      'an upper-case pod name', /^pod: .*DNS-1123 subdomain/);
    await refused(`subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "a..b") { message } }`,
      'an empty part', /^pod: .*DNS-1123 subdomain/);
    await refused(`subscription { k8sPodLogs(cluster: "test", namespace: "shop.x", pod: "a") { message } }`,
      'a namespace with a dot (namespaces are labels)', /^namespace: .*DNS-1123 label/);
    await refused(`subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "a", container: "main.x") { message } }`,
      'a container with a dot (containers are labels)', /^container: .*DNS-1123 label/);
    await refused(`subscription { k8sWorkloadStatus(cluster: "test", namespace: "shop", kind: CRON_JOB, name: "${'c'.repeat(53)}") { id } }`,
      'a 53-character cron job (its jobs append 11 characters)', /^name: must be at most 52 characters/);
    await refused(`subscription { k8sHelmReleaseStatus(cluster: "test", namespace: "shop", name: "${'r'.repeat(54)}") { id } }`,
      'a 54-character release (Helm\'s limit is 53)', /^name: must be at most 53 characters/);
  });
  await gql.dispose();
} else if (mode === 'size') {
  const REASON = 'Message exceeds the 256 KiB limit';
  for (const [name, bytes] of [['300 KiB', 300 * 1024], ['10 MiB', 10 * 1024 * 1024]]) {
    await step(`a ${name} message: close 4400 naming the limit (raw socket)`, async () => {
      const raw = await Raw.open(url);
      await raw.init();
      raw.send({ type: 'subscribe', id: '1', payload: { query: `{ clusters { name } } #${'x'.repeat(bytes)}` } });
      await raw.close(4400, REASON);
    });
    await step(`a ${name} message through graphql-ws with retries on: one close, no reconnect`, async () => {
      let opened = 0;
      const closes = [];
      const gql = client(url, undefined, {
        retryAttempts: 5,
        retryWait: () => sleep(50),
        on: { opened: () => { opened += 1; }, closed: (event) => closes.push(event.code) },
      });
      const sub = new Sub(gql, `{ clusters { name } } #${'x'.repeat(bytes)}`);
      const item = await sub.item('the refusal');
      assert(item.error && item.error.code === 4400, `expected close 4400, got ${JSON.stringify(item.error && { code: item.error.code, reason: item.error.reason })}`);
      assertEqual(item.error.reason, REASON, 'reason');
      await sleep(1000);
      assertEqual([opened, closes], [1, [4400]], 'sockets opened and closes seen');
      await gql.dispose();
    });
  }
  await step('the socket limit leaves smaller messages alone', async () => {
    const gql = client(url);
    const sub = new Sub(gql, `{ clusters { name } } #${'x'.repeat(200 * 1024)}`);
    const data = await sub.next('the answer');
    assertEqual(data.clusters, [{ name: 'test' }], 'clusters');
    await gql.dispose();
  });
} else if (mode === 'leeway') {
  const [inLeeway, pastLeeway] = rest;
  await step('a token past exp but inside the leeway: acked, and its subscribe runs', async () => {
    const gql = client(url, inLeeway);
    const data = await new Sub(gql, '{ clusters { name } }').next('the answer (not UNAUTHENTICATED)');
    assertEqual(data.clusters, [{ name: 'test' }], 'clusters');
    // A subscription stays open until the leeway ends, then ends UNAUTHENTICATED: the
    // same instant at init, at subscribe and mid-stream.
    const started = Date.now();
    const events = new Sub(gql, 'subscription { k8sEvents(cluster: "test") { id } }');
    const errors = await events.error('the end of the leeway');
    assertEqual(errors[0].extensions.code, 'UNAUTHENTICATED', 'code');
    assert(Date.now() - started >= 1000, `ended after ${Date.now() - started} ms, before the leeway`);
    await gql.dispose();
  });
  await step('a token past the leeway is refused at init (4403)', async () => {
    const raw = await Raw.open(url);
    raw.send({ type: 'connection_init', payload: { authToken: pastLeeway } });
    await raw.close(4403, 'Forbidden');
  });
} else if (mode === 'pings') {
  await step('an idle acknowledged socket gets WebSocket pings every interval', async () => {
    const raw = await Raw.open(url);
    let pings = 0;
    raw.ws.on('ping', () => { pings += 1; });
    await raw.init();
    await sleep(3500);
    assert(pings >= 2 && pings <= 4, `pings in 3.5 s at a 1 s interval: ${pings}`);
    assertEqual(raw.closed, null, 'the socket stays open (ws answers pings)');
    raw.end();
  });
  await step('a peer that does not answer pings is closed', async () => {
    const ws = new WebSocket(url, ['graphql-transport-ws'], { autoPong: false });
    const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send(JSON.stringify({ type: 'connection_init' }));
    const started = Date.now();
    const close = await Promise.race([closed, sleep(5000).then(() => null)]);
    assert(close, 'closed within 5 s');
    assertEqual(close.code, 1001, 'close code');
    assert(/^No pong within/.test(close.reason), `reason: ${close.reason}`);
    assert(Date.now() - started >= 1500, `closed after ${Date.now() - started} ms: one unanswered ping is allowed an interval`);
  });
} else {
  fail('usage: clients.mjs defaults|names|size|leeway|pings …');
}
process.exit(0);
