// k8sEvents: ten subscribers of one scope share one upstream watch (with the SSE
// subscribers of that scope), and each gets only events written after it subscribed,
// with the spec's level and involvedObject.
// Usage: node events.mjs <ws-url> <http-base> <sim-url>
import { Sub, assert, assertEqual, client, fail, metric, simApply, simNamespace, sleep, step } from './lib.mjs';

const [url, base, sim] = process.argv.slice(2);
if (!sim) fail('usage: events.mjs <ws-url> <http-base> <sim-url>');

function event(name, type, reason, involved) {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'shop' },
    involvedObject: { kind: involved.kind, name: involved.name, namespace: 'shop' },
    type,
    reason,
    message: `${reason} on ${involved.name}`,
    count: 2,
    firstTimestamp: '2026-05-01T11:00:00Z',
    lastTimestamp: '2026-05-01T12:00:00Z',
  };
}

async function graphqlStreams() {
  const streams = await (await fetch(`${base}/debug/streams`)).json();
  return streams.filter((s) => s.transport === 'graphql-ws' && s.kind === 'events');
}

const clients = [];
const subs = [];
await step('ten subscribers of k8sEvents in namespace shop', async () => {
  await simNamespace(sim, 'shop');
  await simApply(sim, event('before', 'Normal', 'Scheduled', { kind: 'Pod', name: 'old' }));
  // The hub has seen it (its store answers the poll) before anyone subscribes.
  const polled = async () => JSON.stringify(await (await fetch(`${base}/api/clusters/test/events?namespace=shop`)).json());
  for (let i = 0; i < 100 && !(await polled()).includes('Scheduled'); i++) await sleep(100);
  assert((await polled()).includes('Scheduled'), 'the older event is in the store');
  for (let i = 0; i < 10; i++) {
    const gql = client(url);
    clients.push(gql);
    subs.push(new Sub(gql, `subscription {
      k8sEvents(cluster: "test", namespace: "shop") { id level timestamp namespace involvedObject reason message count }
    }`));
  }
  for (let i = 0; i < 100 && (await graphqlStreams()).length < 10; i++) await sleep(100);
  assertEqual((await graphqlStreams()).length, 10, 'graphql-ws streams in /debug/streams');
  assertEqual((await graphqlStreams())[0].namespace, 'shop', 'the stream namespace');
});

await step('exactly one upstream watch for the scope', async () => {
  assertEqual(await metric(base, 'periscope_upstream_watches', { cluster: 'test', kind: 'events' }), 1, 'upstream watches');
  assertEqual(await metric(base, 'periscope_streams_active', { transport: 'graphql-ws', kind: 'events' }), 10, 'active graphql-ws streams');
});

await step('every subscriber gets a new Warning BackOff as ERROR, Pod/web-1, and not the older event', async () => {
  await simApply(sim, event('backoff', 'Warning', 'BackOff', { kind: 'Pod', name: 'web-1' }));
  for (const sub of subs) {
    const { k8sEvents: record } = await sub.next('the BackOff event');
    assertEqual(record.level, 'ERROR', 'level');
    assertEqual(record.involvedObject, 'Pod/web-1', 'involvedObject');
    assertEqual(record.reason, 'BackOff', 'reason');
    assertEqual(record.namespace, 'shop', 'namespace');
    assertEqual(record.count, 2, 'count');
    assertEqual(record.timestamp, '2026-05-01T12:00:00Z', 'timestamp');
    assert(record.id, 'an id');
  }
});

await step('a Warning is WARN and a Normal is INFO', async () => {
  await simApply(sim, event('unhealthy', 'Warning', 'Unhealthy', { kind: 'Pod', name: 'web-2' }));
  await simApply(sim, event('scaled', 'Normal', 'ScalingReplicaSet', { kind: 'Deployment', name: 'web' }));
  for (const sub of subs) {
    assertEqual((await sub.next()).k8sEvents.level, 'WARN', 'Unhealthy level');
    const { k8sEvents: scaled } = await sub.next();
    assertEqual([scaled.level, scaled.involvedObject], ['INFO', 'Deployment/web'], 'ScalingReplicaSet');
  }
});

await step('still one upstream watch', async () => {
  assertEqual(await metric(base, 'periscope_upstream_watches', { cluster: 'test', kind: 'events' }), 1, 'upstream watches');
});

for (const gql of clients) await gql.dispose();
process.exit(0);
