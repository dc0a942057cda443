// §7 graceful shutdown: on SIGTERM the process stops accepting, finishes the requests in flight,
// lets the worker finish its sends and give back the rows it claimed but did not start, exits 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MailTransport, OutgoingEmail } from '../../src/mail/transport.ts';
import { createTestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';
const BIN = path.resolve('bin/mailproof.js');

describe('the worker on stop', () => {
  it('finishes the sends in progress and releases the claimed rows it had not started', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const started: OutgoingEmail[] = [];
    const transport: MailTransport = {
      name: 'slow',
      async send(email) {
        started.push(email);
        await gate;
      },
      async close() {},
    };
    const rt = await createTestRuntime({ transport });
    try {
      const worker = rt.worker;
      if (!worker) throw new Error('no worker');
      await worker.stop();
      for (let i = 0; i < 12; i++) {
        const res = await rt.app.inject({
          method: 'POST',
          url: '/api/signup',
          payload: { email: `stop-${i}@example.com`, password: PASSWORD },
        });
        expect(res.statusCode).toBe(202);
      }
      worker.start();
      // One batch of 12 is claimed; five are sent at once (the SMTP pool's size), seven wait.
      const deadline = Date.now() + 5000;
      while (started.length < 5 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const claimed = await rt.db.kysely
        .selectFrom('outbox')
        .select(['locked_by', 'attempts'])
        .execute();
      expect(claimed.every((row) => row.locked_by === worker.id && row.attempts === 1)).toBe(true);
      expect(started).toHaveLength(5);

      const stopping = worker.stop();
      await new Promise((resolve) => setTimeout(resolve, 50));
      open();
      await stopping;

      const rows = await rt.db.kysely
        .selectFrom('outbox')
        .select(['to_address', 'status', 'attempts', 'locked_by', 'locked_until'])
        .execute();
      const sent = rows.filter((row) => row.status === 'sent');
      const waiting = rows.filter((row) => row.status === 'pending');
      expect(sent.map((row) => row.to_address).sort()).toEqual(started.map((e) => e.to).sort());
      expect(waiting).toHaveLength(7);
      // Given back untouched: no lease, and the attempt the claim counted is undone.
      for (const row of waiting) {
        expect(row).toMatchObject({ attempts: 0, locked_by: null, locked_until: null });
      }
      expect(started).toHaveLength(5);

      // Another worker (here: the next pass) takes them at once, not after the lease.
      while ((await worker.drainOnce()) > 0) {}
      const after = await rt.db.kysely
        .selectFrom('outbox')
        .select(['status', 'attempts'])
        .execute();
      expect(after.every((row) => row.status === 'sent' && row.attempts === 1)).toBe(true);
      expect(started).toHaveLength(12);
    } finally {
      open();
      await rt.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`timed out; output:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

/** `mailproof start` in a child process, on `databaseUrl`, with its output collected. */
function spawnStart(options: {
  databaseUrl: string;
  dataDir: string;
  port: number;
  smtpPort: number;
}) {
  const child = spawn(process.execPath, [BIN, 'start'], {
    cwd: options.dataDir,
    env: {
      PATH: process.env.PATH ?? '',
      DATA_DIR: options.dataDir,
      DATABASE_URL: options.databaseUrl,
      PORT: String(options.port),
      INBOX_SMTP_PORT: String(options.smtpPort),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const output = { stderr: '' };
  child.stderr?.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  return { child, exited, output };
}

describe('mailproof start on SIGTERM', () => {
  it('completes the request in flight, refuses new connections, and exits 0', async () => {
    // The test runtime makes the database (a SQLite file, or a PostgreSQL schema) and migrates it.
    const rt = await createTestRuntime({ worker: false });
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-shutdown-'));
    const port = await freePort();
    const { child, exited, output } = spawnStart({
      databaseUrl: rt.config.databaseUrl,
      dataDir,
      port,
      smtpPort: await freePort(),
    });
    try {
      await waitForOutput(child, 'Mailproof is running', 30_000);
      const base = `http://127.0.0.1:${port}`;
      // An idle keep-alive connection must not hold the shutdown up.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);

      // A sign-up whose body is still arriving when SIGTERM comes.
      const email = 'in-flight@example.com';
      const body = JSON.stringify({ email, password: PASSWORD });
      const socket = connect(port, '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => {
        response += chunk.toString();
      });
      const responded = new Promise<void>((resolve) => socket.on('end', resolve));
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(
        `POST /api/signup HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));

      child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(child.exitCode).toBeNull();
      // No longer accepting: a new connection is refused.
      await expect(
        fetch(`${base}/healthz`, { headers: { connection: 'close' } }),
      ).rejects.toThrow();

      // write, not end: a half-closed socket makes Node abort the request it carries.
      socket.write(body.slice(10));
      await responded;
      expect(response).toMatch(/^HTTP\/1\.1 202 /);
      expect(response).toContain('{"status":"pending"}');

      expect(await exited).toBe(0);
      expect(output.stderr).toBe('');

      // The sign-up and its email survived: queued for the next worker, no lease left behind.
      const rows = await rt.db.kysely
        .selectFrom('outbox')
        .select(['status', 'locked_by'])
        .where('to_address', '=', email)
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]?.locked_by).toBeNull();
      expect(['pending', 'sent']).toContain(rows[0]?.status);
      // The worker removed its heartbeat on the way out.
      expect(await rt.db.kysely.selectFrom('worker_heartbeats').selectAll().execute()).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('mailproof worker --metrics-port', () => {
  it('sends from the outbox, serves its own metrics and readiness, and stops cleanly', async () => {
    const rt = await createTestRuntime({ worker: false });
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-worker-'));
    const metricsPort = await freePort();
    const child = spawn(process.execPath, [BIN, 'worker', '--metrics-port', String(metricsPort)], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: dataDir,
        DATABASE_URL: rt.config.databaseUrl,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitForOutput(child, '/metrics', 30_000);
      const base = `http://127.0.0.1:${metricsPort}`;
      const res = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email: 'from-worker@example.com', password: PASSWORD },
      });
      expect(res.statusCode).toBe(202);

      const deadline = Date.now() + 15_000;
      let text = '';
      while (Date.now() < deadline) {
        text = await (await fetch(`${base}/metrics`)).text();
        if (text.includes('mailproof_outbox_sends_total{result="sent",kind="email"} 1')) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(text).toContain('mailproof_outbox_sends_total{result="sent",kind="email"} 1');
      expect(text).toContain('mailproof_outbox_workers_live 1');
      expect(text).toContain('process_cpu_seconds_total');
      const ready = (await (await fetch(`${base}/readyz`)).json()) as Record<string, unknown>;
      expect(ready).toMatchObject({ status: 'ready', worker: { inProcess: true, live: 1 } });
      // Only the operations routes: the web app is not served from a worker.
      expect((await fetch(`${base}/signup`)).status).toBe(404);
      expect(await rt.db.kysely.selectFrom('worker_heartbeats').selectAll().execute()).toHaveLength(
        1,
      );

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await rt.db.kysely.selectFrom('worker_heartbeats').selectAll().execute()).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('mailproof start when its port is taken', () => {
  it('says so in one line, closes what it had started and exits 1', async () => {
    const rt = await createTestRuntime({ worker: false });
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-port-taken-'));
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const smtpPort = await freePort();
    const { child, exited, output } = spawnStart({
      databaseUrl: rt.config.databaseUrl,
      dataDir,
      port,
      smtpPort,
    });
    try {
      const code = await Promise.race([
        exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 30_000)),
      ]);
      expect(code).toBe(1);
      expect(output.stderr.trim().split('\n')).toHaveLength(1);
      expect(output.stderr).toMatch(/^mailproof: .*EADDRINUSE/);
      // The SMTP catcher it had started is closed: its port is free again.
      const reopened = createServer();
      await new Promise<void>((resolve, reject) => {
        reopened.once('error', reject);
        reopened.listen(smtpPort, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => reopened.close(resolve));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await new Promise((resolve) => taken.close(resolve));
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
