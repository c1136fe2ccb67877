// /graphqlws with JWT auth: 4403 for a missing, bad, expired or non-admin token; the
// token from connection_init's authToken or the upgrade's Authorization header; and a
// revocation mid-stream ending the operation with UNAUTHENTICATED.
// Usage: node auth.mjs <ws-url> <http-base> <admin-token> <non-admin-token> <expired-token> <other-admin-token>
import { Raw, Sub, assertEqual, client, fail, sleep, step } from './lib.mjs';

const [url, base, admin, user, expired, root] = process.argv.slice(2);
if (!root) fail('usage: auth.mjs <ws-url> <http-base> <admin> <non-admin> <expired> <other-admin>');

for (const [name, payload] of [
  ['no token', undefined],
  ['a bad token', { authToken: 'not-a-jwt' }],
  ['an expired token', { authToken: expired }],
  ['a token of a non-admin', { authToken: user }],
]) {
  await step(`4403 Forbidden for ${name}`, async () => {
    const raw = await Raw.open(url);
    raw.send(payload ? { type: 'connection_init', payload } : { type: 'connection_init' });
    await raw.close(4403, 'Forbidden');
  });
}

await step('the reference client sees 4403 as a close event', async () => {
  let closed;
  const gql = client(url, user, { on: { closed: (event) => { closed = event; } } });
  const sub = new Sub(gql, '{ clusters { name } }');
  const item = await sub.item('the refusal');
  assertEqual(item.error && item.error.code, 4403, `close code (got ${JSON.stringify(item)})`);
  assertEqual(closed && closed.code, 4403, 'closed event');
  await gql.dispose();
});

await step('connection_ack with authToken in connection_init', async () => {
  const raw = await Raw.open(url);
  await raw.init({ authToken: admin });
  raw.end();
});

await step('connection_ack with the upgrade request\'s Authorization header', async () => {
  const raw = await Raw.open(url, ['graphql-transport-ws'], { Authorization: `Bearer ${admin}` });
  await raw.init();
  raw.end();
});

await step('a revocation mid-stream ends the operation with UNAUTHENTICATED', async () => {
  const gql = client(url, admin);
  const sub = new Sub(gql, 'subscription { k8sEvents(cluster: "test") { id } }');
  const headers = { authorization: `Bearer ${root}`, 'content-type': 'application/json' };
  const open = async () => (await (await fetch(`${base}/debug/streams`, { headers })).json())
    .filter((s) => s.transport === 'graphql-ws').length;
  for (let i = 0; i < 100 && (await open()) < 1; i++) await sleep(100);
  assertEqual(await open(), 1, 'the operation is open');
  const revoked = await fetch(`${base}/api/admin/revocations`, {
    method: 'POST', headers, body: JSON.stringify({ subject: 'alice' }),
  });
  assertEqual(revoked.status, 200, 'revocation');
  const errors = await sub.error('UNAUTHENTICATED');
  assertEqual(errors[0].extensions.code, 'UNAUTHENTICATED', 'code');
  for (let i = 0; i < 50 && (await open()) > 0; i++) await sleep(100);
  assertEqual(await open(), 0, 'the slot is released');
  await gql.dispose();
});

await step('the revoked subject cannot connect again', async () => {
  const raw = await Raw.open(url);
  raw.send({ type: 'connection_init', payload: { authToken: admin } });
  await raw.close(4403, 'Forbidden');
});

process.exit(0);
