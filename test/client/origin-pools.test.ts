// undici's Agent closes an origin's Pool whenever its count of connected sockets falls to zero:
// with a new connection per request it built a new Pool and new Clients about every other request.
// The dispatcher keeps the Pool (parked) and hands it back, with the Agent's events intact, and
// closes or destroys it with the dispatcher.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMtlsDispatcher } from '../../src/client/dispatcher.js';
import { loadUndici } from '../../src/client/undici.js';
import { createTestCa } from '../../src/testing/index.js';
import { caOf, httpsServer, pemOf } from '../helpers/client-servers.js';
import { mutableIdentity } from '../helpers/mutable-identity.js';
import { onCleanup } from '../helpers/server.js';

const ca = createTestCa();
const BOARDS = 'spiffe://cluster.local/ns/demo/sa/boards';
afterAll(() => ca.close());

const undici = loadUndici();
// The Pools closed and destroyed (undici's close() without a callback calls itself with one).
const ended = { close: new Set<unknown>(), destroy: new Set<unknown>() };
const calls = {
  get close() {
    return ended.close.size;
  },
  get destroy() {
    return ended.destroy.size;
  },
};
const prototype = undici.Pool.prototype as unknown as Record<
  'close' | 'destroy',
  (...a: unknown[]) => unknown
>;
const { close, destroy } = prototype;
prototype.close = function (this: unknown, ...args: unknown[]) {
  ended.close.add(this);
  return close.apply(this, args);
};
prototype.destroy = function (this: unknown, ...args: unknown[]) {
  ended.destroy.add(this);
  return destroy.apply(this, args);
};
afterAll(() => {
  prototype.close = close;
  prototype.destroy = destroy;
});
afterEach(() => {
  ended.close.clear();
  ended.destroy.clear();
});

async function setup() {
  const server = await httpsServer({ ...pemOf(ca.issue('/ns/demo/sa/boards')), ca: caOf(ca.bundle()) });
  const identity = mutableIdentity(ca.issue('/ns/demo/sa/app-ui'), ca.bundles());
  onCleanup(() => identity.close());
  const dispatcher = createMtlsDispatcher({ identity, destinations: { '*': { expect: BOARDS } } });
  const events = { connect: 0, disconnect: 0 };
  dispatcher.on('connect', () => events.connect++);
  dispatcher.on('disconnect', () => events.disconnect++);
  const get = async () => {
    const res = await undici.request(`http://127.0.0.1:${server.port}/`, { dispatcher, reset: true });
    await res.body.text();
    return res.statusCode;
  };
  return { server, dispatcher, events, get };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('origin pools', () => {
  it('a new connection per request keeps its origin Pool; the Agent still reports each connection once', async () => {
    const { server, dispatcher, events, get } = await setup();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await get());
    await until(() => events.disconnect >= 12);
    expect(statuses).toEqual(Array(12).fill(200));
    expect(server.seen).toHaveLength(12);
    // undici alone closes the Pool each time its last connection ends: 11 or 12 closes here.
    expect(calls.close).toBe(0);
    expect(events).toEqual({ connect: 12, disconnect: 12 });
    await dispatcher.close();
    expect(calls.close).toBe(1);
  });

  it('destroying the dispatcher destroys a parked Pool too', async () => {
    const { dispatcher, events, get } = await setup();
    await get();
    await until(() => events.disconnect >= 1);
    expect(calls.destroy).toBe(0);
    await dispatcher.destroy();
    expect(calls.destroy).toBe(1);
    await expect(get()).rejects.toThrow();
  });

  it('keep-alive requests are served by one Pool, closed with the dispatcher', async () => {
    const { server, dispatcher } = await setup();
    for (let i = 0; i < 5; i++) {
      const res = await undici.request(`http://127.0.0.1:${server.port}/`, { dispatcher });
      await res.body.text();
    }
    expect(server.seen).toHaveLength(5);
    expect(calls.close).toBe(0);
    await dispatcher.close();
    expect(calls.close).toBe(1);
  });
});
