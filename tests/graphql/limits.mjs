// The per-user cap shared with SSE (TOO_MANY_STREAMS) and `complete` at the maximum
// operation duration.
// Usage: node limits.mjs cap <ws-url> <http-base> <limit>    (limit - 1 SSE streams are open)
//        node limits.mjs duration <ws-url>                    ([graphql] max_operation_duration = 2s)
import { Sub, assert, assertEqual, client, fail, sleep, step } from './lib.mjs';

const [mode, url, base, limit] = process.argv.slice(2);
const EVENTS = 'subscription { k8sEvents(cluster: "test", namespace: "shop") { id } }';

if (mode === 'cap') {
  const open = async () => (await (await fetch(`${base}/debug/streams`)).json()).length;
  const until = async (n) => {
    for (let i = 0; i < 100 && (await open()) !== n; i++) await sleep(100);
    assertEqual(await open(), n, 'open streams (SSE and GraphQL)');
  };
  const gql = client(url);
  let first;
  await step('the last slot goes to a GraphQL operation beside the SSE streams', async () => {
    await until(Number(limit) - 1);
    first = new Sub(gql, EVENTS);
    await until(Number(limit));
  });
  await step('past the cap: error TOO_MANY_STREAMS, and the socket stays usable', async () => {
    const refused = new Sub(gql, EVENTS);
    const errors = await refused.error('TOO_MANY_STREAMS');
    assertEqual(errors[0].extensions.code, 'TOO_MANY_STREAMS', 'code');
    assert(/stream limit reached/.test(errors[0].message), `message: ${errors[0].message}`);
  });
  await step('completing an operation frees its slot', async () => {
    first.dispose();
    await until(Number(limit) - 1);
    const again = new Sub(gql, EVENTS);
    await until(Number(limit));
    again.dispose();
  });
  await gql.dispose();
} else if (mode === 'duration') {
  await step('an operation ends with complete (not error) at the duration cap', async () => {
    const gql = client(url);
    const started = Date.now();
    const sub = new Sub(gql, EVENTS);
    await sub.complete('complete at the cap');
    const took = Date.now() - started;
    assert(took >= 1500, `complete came after ${took} ms, before the 2 s cap`);
    await gql.dispose();
  });
} else {
  fail('usage: limits.mjs cap|duration …');
}
process.exit(0);
