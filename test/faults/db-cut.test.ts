// Issue 5: the database goes away under load (every connection cut, new ones refused) and comes
// back. Requests answer 503 while it is gone, nothing that was accepted is lost, and the service
// recovers without a restart. The cut is a TCP proxy between the app and the database server
// (PostgreSQL or MariaDB), so the server other test files use is never stopped.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';
const database =
  process.env.MAILPROOF_TEST_DB === 'mariadb'
    ? {
        variable: 'MAILPROOF_TEST_MARIADB_URL',
        url: 'mysql://root@127.0.0.1:3306/test',
        port: 3306,
      }
    : {
        variable: 'MAILPROOF_TEST_POSTGRES_URL',
        url: 'postgres://postgres@127.0.0.1:5432/test',
        port: 5432,
      };
const upstream = new URL(process.env[database.variable] ?? database.url);

interface Proxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

async function startProxy(): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const backend = connect(Number(upstream.port || database.port), upstream.hostname);
        for (const s of [client, backend]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {
            client.destroy();
            backend.destroy();
          });
        }
        client.pipe(backend).pipe(client);
      });
      server.on('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        port = typeof address === 'object' && address ? address.port : port;
        resolve();
      });
    });
  await listen();
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return { port, cut: stop, restore: listen, close: stop };
}

const serverProject = ['postgres', 'mariadb'].includes(process.env.MAILPROOF_TEST_DB ?? '');
describe.runIf(serverProject)('database cut off under load', () => {
  let proxy: Proxy;
  let rt: TestRuntime;
  beforeAll(async () => {
    proxy = await startProxy();
    const viaProxy = new URL(upstream);
    viaProxy.port = String(proxy.port);
    viaProxy.hostname = '127.0.0.1';
    process.env[database.variable] = viaProxy.toString();
    // Imported now, so the test runtime connects through the proxy.
    const { createTestRuntime } = await import('../support/runtime.ts');
    rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await rt?.close();
    await proxy?.close();
  });

  async function signUpMany(prefix: string, count: number) {
    return Promise.all(
      Array.from({ length: count }, (_, i) =>
        rt.app.inject({
          method: 'POST',
          url: '/api/signup',
          payload: { email: `${prefix}-${i}@example.com`, password: PASSWORD },
        }),
      ),
    ).then((answers) =>
      answers.map((answer, i) => ({ email: `${prefix}-${i}@example.com`, answer })),
    );
  }

  it('answers 503 with Retry-After while the database is gone, loses nothing accepted, and recovers', async () => {
    const before = await signUpMany('before', 8);
    expect(before.map((r) => r.answer.statusCode)).toEqual(Array(8).fill(202));

    // Cut while requests are in flight: each ends as 202 (committed) or 503, never 500.
    const during = signUpMany('during', 8);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await proxy.cut();
    const cutAnswers = await during;
    for (const { answer } of cutAnswers) expect([202, 503]).toContain(answer.statusCode);

    const down = await signUpMany('down', 6);
    for (const { answer } of down) {
      expect(answer.statusCode).toBe(503);
      expect(answer.headers['retry-after']).toBe('5');
      expect(answer.json()).toEqual({
        error: {
          code: 'service_unavailable',
          message: 'The service is briefly unavailable. Please try again in a few seconds.',
        },
      });
    }
    const ready = await rt.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    const page = await rt.app.inject({
      url: '/signup',
      method: 'POST',
      payload: 'email=x@example.com',
    });
    // A page, not a crash: the form is refused or the 503 page is shown.
    expect(page.statusCode).not.toBe(500);
    expect(page.headers['content-type']).toMatch(/text\/html|application\/json/);

    await proxy.restore();
    let after: Awaited<ReturnType<typeof signUpMany>> = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      after = await signUpMany(`after${attempt}`, 4);
      if (after.every((r) => r.answer.statusCode === 202)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(after.map((r) => r.answer.statusCode)).toEqual([202, 202, 202, 202]);
    expect((await rt.app.inject({ url: '/readyz' })).statusCode).toBe(200);

    // Everything answered 202 has its account and its message, delivered once.
    const accepted = [...before, ...cutAnswers, ...after]
      .filter((r) => r.answer.statusCode === 202)
      .map((r) => r.email);
    const users = await rt.db.kysely
      .selectFrom('users')
      .select('email')
      .where('email', 'in', accepted)
      .execute();
    expect(users.map((u) => u.email).sort()).toEqual([...accepted].sort());
    for (let i = 0; i < 100; i++) {
      const open = await rt.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('status', '!=', 'sent')
        .execute();
      if (open.length === 0) break;
      rt.clock.advance(61_000); // leases a failed recording left behind run out
      rt.worker?.wake();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const email of accepted) {
      const message = await rt.mailTo(email, { waitMs: 5000 });
      expect(message.verification.url).toMatch(/\/verify\//);
    }
  }, 120_000);
});
