// Helpers of the /graphqlws tests: raw sockets (ws), the reference client (graphql-ws),
// writes to the simulated cluster, and one `ok: <step>` line per passed step.
// A failure prints what was expected and exits 1; the Rust test shows the output.
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';

export const patience = Number(process.env.PERISCOPE_TEST_PATIENCE_MS || 15000);

export function fail(message) {
  console.error(`FAILED: ${message}`);
  process.exit(1);
}

export async function step(name, body) {
  try {
    await body();
  } catch (error) {
    fail(`${name}: ${error && error.stack ? error.stack : error}`);
  }
  console.log(`ok: ${name}`);
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// JSON with object keys sorted, so key order does not matter.
function canonical(value) {
  return JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
    : v));
}

export function assertEqual(actual, expected, what) {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function within(promise, what, ms = patience) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/// A raw socket: every message and the close, in order.
export class Raw {
  static async open(url, protocols = ['graphql-transport-ws'], headers = {}) {
    const raw = new Raw(new WebSocket(url, protocols, { headers }));
    await within(new Promise((resolve, reject) => {
      raw.ws.once('open', resolve);
      raw.ws.once('error', reject);
    }), 'open');
    return raw;
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    ws.on('message', (data) => this.push({ message: JSON.parse(String(data)) }));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.push({ close: this.closed });
    });
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.queue.push(item);
  }

  item(what) {
    const item = this.queue.shift();
    if (item) return Promise.resolve(item);
    return within(new Promise((resolve) => this.waiters.push(resolve)), what);
  }

  send(value) {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  async init(payload) {
    this.send(payload ? { type: 'connection_init', payload } : { type: 'connection_init' });
    const ack = await this.message('connection_ack');
    return ack;
  }

  /// The next message, which must be of `type`.
  async message(type) {
    const item = await this.item(`${type} message`);
    if (!item.message) throw new Error(`expected ${type}, the socket closed ${JSON.stringify(item.close)}`);
    if (type && item.message.type !== type) {
      throw new Error(`expected ${type}, got ${JSON.stringify(item.message)}`);
    }
    return item.message;
  }

  /// The close, which must be `code` (and `reason` when given); no message before it.
  async close(code, reason) {
    const item = await this.item(`close ${code}`);
    if (!item.close) throw new Error(`expected close ${code}, got ${JSON.stringify(item.message)}`);
    assertEqual(item.close.code, code, 'close code');
    if (reason !== undefined) assertEqual(item.close.reason, reason, 'close reason');
  }

  /// Nothing arrives for `ms`.
  async quiet(ms, what) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length) throw new Error(`${what}: got ${JSON.stringify(this.queue[0])}`);
  }

  end() {
    this.ws.close();
  }
}

/// The reference client, with `authToken` in connection_init when given. Retries off:
/// a test sees each close.
export function client(url, token, options = {}) {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authToken: token } : undefined,
    retryAttempts: 0,
    lazy: true,
    ...options,
  });
}

/// One subscription through the reference client: records, then `complete` or `error`.
export class Sub {
  constructor(client, query, variables) {
    this.records = [];
    this.waiters = [];
    this.ended = null;
    this.dispose = client.subscribe({ query, variables }, {
      next: (value) => this.push({ next: value }),
      error: (error) => { this.ended = { error }; this.push(this.ended); },
      complete: () => { if (!this.ended) { this.ended = { complete: true }; this.push(this.ended); } },
    });
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.records.push(item);
  }

  item(what) {
    const item = this.records.shift();
    if (item) return Promise.resolve(item);
    return within(new Promise((resolve) => this.waiters.push(resolve)), what);
  }

  /// The next `next` payload's data.
  async next(what = 'a record') {
    const item = await this.item(what);
    if (!item.next) throw new Error(`expected ${what}, got ${describe(item)}`);
    if (item.next.errors) throw new Error(`expected ${what}, got errors ${JSON.stringify(item.next.errors)}`);
    return item.next.data;
  }

  /// The operation's end by `error`; returns the errors.
  async error(what = 'an error') {
    const item = await this.item(what);
    if (!item.error) throw new Error(`expected ${what}, got ${describe(item)}`);
    if (!Array.isArray(item.error)) throw new Error(`expected GraphQL errors, got ${describe(item)}`);
    return item.error;
  }

  /// Nothing arrives for `ms`.
  async quiet(ms, what) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.records.length) throw new Error(`${what}: got ${describe(this.records[0])}`);
  }

  async complete(what = 'complete') {
    const item = await this.item(what);
    if (!item.complete) throw new Error(`expected ${what}, got ${describe(item)}`);
  }
}

function describe(item) {
  if (item.error instanceof Error) return `error ${item.error.message}`;
  if (item.error && item.error.code) return `close ${item.error.code} ${item.error.reason}`;
  return JSON.stringify(item);
}

/// Writes an object to the simulated cluster (create, or replace when it exists) and,
/// when `status` is given, its status through the /status subresource.
export async function simApply(sim, object, status) {
  const ns = object.metadata.namespace;
  const base = object.apiVersion === 'v1' ? `${sim}/api/v1` : `${sim}/apis/${object.apiVersion}`;
  const plural = `${object.kind.toLowerCase()}s`;
  const collection = ns ? `${base}/namespaces/${ns}/${plural}` : `${base}/${plural}`;
  const item = `${collection}/${object.metadata.name}`;
  const json = { 'content-type': 'application/json' };
  let response = await fetch(collection, { method: 'POST', headers: json, body: JSON.stringify(object) });
  if (response.status === 409) {
    response = await fetch(item, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify(object),
    });
  }
  if (!response.ok) throw new Error(`writing ${item}: ${response.status} ${await response.text()}`);
  if (status) {
    const patched = await fetch(`${item}/status`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ status }),
    });
    if (!patched.ok) throw new Error(`writing ${item}/status: ${patched.status} ${await patched.text()}`);
  }
}

/// Creates namespace `name` in the simulated cluster.
export async function simNamespace(sim, name) {
  const response = await fetch(`${sim}/api/v1/namespaces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }),
  });
  if (!response.ok && response.status !== 409) throw new Error(`creating namespace ${name}: ${response.status}`);
}

export async function simDelete(sim, path) {
  const response = await fetch(`${sim}${path}`, { method: 'DELETE' });
  if (!response.ok) throw new Error(`deleting ${path}: ${response.status} ${await response.text()}`);
}

/// The value of one sample of the host's /metrics.
export async function metric(base, name, labels) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (wanted.every((pair) => line.includes(pair))) return Number(line.split(' ').pop());
  }
  return 0;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
