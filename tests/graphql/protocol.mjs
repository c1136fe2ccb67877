// graphql-transport-ws to the letter: every close code, ping/pong, `error` ending an
// operation, duplicate and reused ids, `complete` handling, and the reference client.
// Usage: node protocol.mjs <ws-url>   (the server runs with [graphql] init_timeout = 1s)
import { Raw, Sub, assert, assertEqual, client, fail, sleep, step } from './lib.mjs';

const url = process.argv[2] || fail('usage: protocol.mjs <ws-url>');
const EVENTS = 'subscription { k8sEvents(cluster: "test", namespace: "shop") { id reason } }';

await step('4406 when no subprotocol is offered', async () => {
  const raw = await Raw.open(url, []);
  await raw.close(4406, 'Subprotocol not acceptable');
});

await step('another subprotocol is not agreed (the client refuses the handshake)', async () => {
  let refused = false;
  try {
    (await Raw.open(url, ['graphql-ws'])).end();
  } catch (error) {
    refused = /subprotocol/i.test(String(error));
  }
  assert(refused, 'the handshake should fail: the server agrees on graphql-transport-ws only');
});

await step('4408 without connection_init within the init timeout', async () => {
  const raw = await Raw.open(url);
  await raw.close(4408, 'Connection initialisation timeout');
});

await step('4400 for unparsable JSON', async () => {
  const raw = await Raw.open(url);
  raw.send('{"type":');
  await raw.close(4400, 'Invalid message received');
});

await step('4400 for an unknown type', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe-please', id: '1' });
  await raw.close(4400, 'Invalid message received');
});

await step('4400 for a subscribe without id', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe', payload: { query: '{ clusters { name } }' } });
  await raw.close(4400, 'Invalid message received');
});

await step('4401 for subscribe before connection_ack', async () => {
  const raw = await Raw.open(url);
  raw.send({ type: 'subscribe', id: '1', payload: { query: '{ clusters { name } }' } });
  await raw.close(4401, 'Unauthorized');
});

await step('4429 for a second connection_init, even sent before the first is acked', async () => {
  const raw = await Raw.open(url);
  raw.send({ type: 'connection_init' });
  raw.send({ type: 'connection_init' });
  let item = await raw.item('ack or close');
  if (item.message) {
    assertEqual(item.message.type, 'connection_ack', 'first reply');
    item = await raw.item('close');
  }
  assertEqual(item.close, { code: 4429, reason: 'Too many initialisation requests' }, 'close');
});

await step('4500 for a server-to-client message from the client', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'next', id: '1', payload: {} });
  await raw.close(4500, 'Internal server error');
});

await step('ping is answered with pong echoing the payload', async () => {
  const raw = await Raw.open(url);
  raw.send({ type: 'ping', payload: { at: 7 } });
  assertEqual(await raw.message('pong'), { type: 'pong', payload: { at: 7 } }, 'pong');
  raw.send({ type: 'ping' });
  assertEqual(await raw.message('pong'), { type: 'pong' }, 'pong without payload');
  raw.send({ type: 'pong' });
  await raw.init();
  raw.end();
});

await step('a query runs over subscribe: next, then complete', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe', id: 'q', payload: { query: '{ clusters { name } kinds { token namespaced } }' } });
  const next = await raw.message('next');
  assertEqual(next.id, 'q', 'id');
  assertEqual(next.payload.data.clusters, [{ name: 'test' }], 'clusters');
  assert(next.payload.data.kinds.some((k) => k.token === 'pods' && k.namespaced), 'pods among the kinds');
  assertEqual(await raw.message('complete'), { id: 'q', type: 'complete' }, 'complete');
  raw.end();
});

await step('error ends an operation: no complete after it, the socket stays open, the id is free', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe', id: 'bad', payload: { query: 'subscription { nope }' } });
  const error = await raw.message('error');
  assertEqual(error.id, 'bad', 'id');
  assert(Array.isArray(error.payload) && error.payload[0].message, `errors: ${JSON.stringify(error.payload)}`);
  await raw.quiet(300, 'nothing after error');
  raw.send({ type: 'subscribe', id: 'bad', payload: { query: 'subscription { k8sPodLogs(cluster: "test", namespace: "shop", pod: "p") { message } }' } });
  const missing = await raw.message('error');
  assertEqual(missing.payload[0].extensions.code, 'NOT_FOUND', 'k8sPodLogs code');
  raw.send({ type: 'subscribe', id: 'h', payload: { query: 'subscription { k8sHelmReleaseStatus(cluster: "test", namespace: "shop", name: "Not_A_Name") { status } }' } });
  assertEqual((await raw.message('error')).payload[0].extensions.code, 'BAD_REQUEST', 'helm code');
  raw.send({ type: 'ping' });
  await raw.message('pong');
  raw.end();
});

await step('4409 for a subscribe whose id is still running', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe', id: 'dup', payload: { query: EVENTS } });
  await sleep(200);
  raw.send({ type: 'subscribe', id: 'dup', payload: { query: EVENTS } });
  await raw.close(4409, 'Subscriber for dup already exists');
});

await step('a client complete is not echoed, frees its id; an unknown complete is ignored', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.send({ type: 'subscribe', id: 'e', payload: { query: EVENTS } });
  await sleep(200);
  raw.send({ type: 'complete', id: 'e' });
  raw.send({ type: 'complete', id: 'never-subscribed' });
  await raw.quiet(300, 'nothing after the client complete');
  raw.send({ type: 'subscribe', id: 'e', payload: { query: EVENTS } });
  raw.send({ type: 'ping' });
  await raw.message('pong');
  raw.end();
});

await step('a client close is echoed with its own code', async () => {
  const raw = await Raw.open(url);
  await raw.init();
  raw.ws.close(1000, 'bye');
  await raw.close(1000);
});

await step('the reference client runs a query', async () => {
  const gql = client(url);
  const sub = new Sub(gql, '{ clusters { name } }');
  assertEqual(await sub.next(), { clusters: [{ name: 'test' }] }, 'data');
  await sub.complete();
  await gql.dispose();
});

await step('the reference client gets error (not next) for an invalid subscription', async () => {
  const gql = client(url);
  const sub = new Sub(gql, 'subscription { k8sEvents(cluster: "test", namespace: "NOT A LABEL") { id } }');
  const errors = await sub.error();
  assertEqual(errors[0].extensions.code, 'BAD_REQUEST', 'code');
  await gql.dispose();
});

process.exit(0);
