// Issue 5, scale-out: two `mailproof serve` processes and two `mailproof worker` processes on one
// PostgreSQL schema, as a deployment runs them. Sign-ups spread over both web processes are all
// delivered exactly once, a rate limit reached through one web process holds on the other, and a
// new row wakes an idle worker at once (LISTEN/NOTIFY), long before its next poll.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../support/runtime.ts';

const SIGNUPS = Number(process.env.SCALE_OUT_SIGNUPS ?? 2000);
const BIN = path.resolve('bin/mailproof.js');
const PASSWORD = 'a long enough passphrase here';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Sink {
  port: number;
  /** Every message received: its Message-ID and first recipient. */
  received: Array<{ id: string; to: string }>;
  ids: string[];
  arrivals: Map<string, number>;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const ids: string[] = [];
  const received: Array<{ id: string; to: string }> = [];
  const arrivals = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const head = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0] ?? '';
        const id = /^message-id:\s*(\S+)/im.exec(head)?.[1] ?? '(none)';
        ids.push(id);
        received.push({ id, to: session.envelope.rcptTo[0]?.address ?? '' });
        for (const r of session.envelope.rcptTo) arrivals.set(r.address, Date.now());
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    port,
    ids,
    received,
    arrivals,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

function run(args: string[], env: Record<string, string>, name: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d;
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) console.error(`${name} exited ${code}:\n${output}`);
  });
  return child;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(process.env.MAILPROOF_TEST_DB === 'postgres')(
  'two web and two worker processes on one PostgreSQL',
  () => {
    const schema = `mp_scale_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const children: ChildProcess[] = [];
    let sink: Sink;
    let webs: string[] = [];
    let admin: pg.Client;
    let env: Record<string, string>;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(POSTGRES_URL);
      url.searchParams.set('options', `-c search_path=${schema}`);
      sink = await startSink();
      env = {
        NODE_ENV: 'development',
        DATABASE_URL: url.toString(),
        DATA_DIR: path.join(process.env.TMPDIR ?? '/tmp', schema),
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(sink.port),
        INBOX_ENABLED: 'false',
        LOG_LEVEL: 'warn',
        // Every sign-up comes from 127.0.0.1: only the per-address limit is under test.
        RATE_LIMIT_SIGNUP_CLIENT: '1000000/1h',
        RATE_LIMIT_SIGNUP_ADDRESS: '3/1h',
        // An idle worker polls only every 30 s: prompt delivery can only come from NOTIFY.
        OUTBOX_POLL_INTERVAL: '30s',
      };
      const migrate = run(['migrate'], env, 'migrate');
      await new Promise((resolve) => migrate.on('exit', resolve));
      const ports = [await freePort(), await freePort()];
      webs = ports.map((port) => `http://127.0.0.1:${port}`);
      for (const [i, port] of ports.entries()) {
        children.push(
          run(['serve'], { ...env, PORT: String(port), BASE_URL: webs[i] as string }, `web ${i}`),
        );
      }
      for (const i of [0, 1]) children.push(run(['worker'], env, `worker ${i}`));
      for (const web of webs) {
        await waitFor(async () => (await fetch(`${web}/readyz`)).ok, 30_000, `${web}/readyz`);
      }
    }, 60_000);

    afterAll(async () => {
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(
        children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null)),
      );
      await sink?.close();
      await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin?.end();
    });

    const signUp = (web: string, email: string) =>
      fetch(`${web}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });

    it('wakes an idle worker at once through NOTIFY', async () => {
      // Let both workers go idle (their first poll found nothing).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const email = 'wake-up@example.com';
      const sent = Date.now();
      expect((await signUp(webs[0] as string, email)).status).toBe(202);
      await waitFor(async () => sink.arrivals.has(email), 10_000, 'the wake-up message');
      expect((sink.arrivals.get(email) ?? 0) - sent).toBeLessThan(5000);
    });

    it('a limit reached through one web process holds on the other', async () => {
      const email = 'limited@example.com';
      expect((await signUp(webs[0] as string, email)).status).toBe(202);
      expect((await signUp(webs[1] as string, email)).status).toBe(202);
      expect((await signUp(webs[0] as string, email)).status).toBe(202);
      const fourth = await signUp(webs[1] as string, email);
      expect(fourth.status).toBe(429);
      expect(Number(fourth.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await signUp(webs[0] as string, email)).status).toBe(429);
    });

    it(`delivers ${SIGNUPS} sign-ups spread over both web processes, each message once`, async () => {
      const ours = () => sink.received.filter((r) => r.to.startsWith('scale-'));
      const statuses = new Map<number, number>();
      let next = 0;
      const client = async () => {
        for (let i = next++; i < SIGNUPS; i = next++) {
          const res = await signUp(webs[i % 2] as string, `scale-${i}@example.com`);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          await res.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      expect(Object.fromEntries(statuses)).toEqual({ 202: SIGNUPS });
      await waitFor(
        async () => ours().length >= SIGNUPS,
        120_000,
        `${SIGNUPS} messages at the SMTP sink`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // a duplicate would show up now
      const ids = ours().map((r) => r.id);
      expect(ids).toHaveLength(SIGNUPS);
      expect(new Set(ids).size).toBe(SIGNUPS);
      for (let i = 0; i < SIGNUPS; i++)
        expect(sink.arrivals.has(`scale-${i}@example.com`)).toBe(true);
      const { rows } = await admin.query(
        `SELECT status, count(*)::int AS n FROM ${schema}.outbox GROUP BY status`,
      );
      expect(rows).toEqual([{ status: 'sent', n: SIGNUPS + 4 }]);
    }, 240_000);
  },
);
