import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

describe('waiting for a message', () => {
  let rt: TestRuntime;
  let base: string;
  beforeAll(async () => {
    rt = await createTestRuntime();
    await rt.app.listen({ port: 0, host: '127.0.0.1' });
    const address = rt.app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await rt.close();
  });

  it('stops when the client hangs up: no listener or timer outlives the request', async () => {
    const events = rt.inbox?.events;
    if (!events) throw new Error('inbox disabled');
    const before = events.listenerCount('message');
    const controller = new AbortController();
    const pending = fetch(`${base}/_inbox/api/latest?to=nobody@example.com&wait=30000`, {
      signal: controller.signal,
    }).catch((error: Error) => error.name);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(events.listenerCount('message')).toBe(before + 1);
    controller.abort();
    expect(await pending).toBe('AbortError');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(events.listenerCount('message')).toBe(before);
  });

  it('still answers a wait that is not abandoned', async () => {
    const waiting = fetch(`${base}/_inbox/api/latest?to=waiter@example.com&wait=5000`);
    await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: 'waiter@example.com', password: 'a passphrase long enough for tests' },
    });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect((await res.json()).to).toEqual(['waiter@example.com']);
  });
});
