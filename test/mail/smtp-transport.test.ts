// §4 delivery: the outbox worker sends through a real SMTP server over a socket (plain, STARTTLS
// or implicit TLS, with AUTH and DKIM), retries temporary failures with backoff, and
// dead-letters permanent ones.

import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type ParsedMail, simpleParser } from 'mailparser';
import pino, { type Logger } from 'pino';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Random } from '../../src/clock.ts';
import { ConfigError, loadConfig, secretValues } from '../../src/config.ts';
import type { OutboxRow } from '../../src/db/schema.ts';
import {
  classifySmtpError,
  type MailTransport,
  type OutgoingEmail,
  SendError,
} from '../../src/mail/transport.ts';
import { backoffMs } from '../../src/mail/worker.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';
const SMTP_USER = 'mailproof-smtp-user';
const SMTP_PASS = 'smtp secret p@ss';
const SENDER = 'Mailproof Tests <no-reply@mailproof.test>';

// ---------------------------------------------------------------------------------------------
// A real SMTP server on loopback that records what it receives and answers as each test plans.

interface Received {
  raw: Buffer;
  parsed: ParsedMail;
  mailFrom: string | null;
  rcptTo: string[];
  user: string | undefined;
}

interface FakeSmtp {
  port: number;
  received: Received[];
  auths: Array<{ method: string; username?: string | null; password?: string | null }>;
  /** DATA attempts per (first) recipient, accepted or not. */
  dataAttempts: Map<string, number>;
  /** Replies to successive DATA commands for a recipient; an empty or missing list means 250. */
  dataPlan: Map<string, number[]>;
  /** A reply code for RCPT TO of a recipient. */
  rcptReject: Map<string, number>;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

async function startFakeSmtp(): Promise<FakeSmtp> {
  const fake: Omit<FakeSmtp, 'port' | 'close'> = {
    received: [],
    auths: [],
    dataAttempts: new Map(),
    dataPlan: new Map(),
    rcptReject: new Map(),
  };
  const server = new SMTPServer({
    name: 'fake-provider.test',
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    onAuth(auth, _session, callback) {
      fake.auths.push({ method: auth.method, username: auth.username, password: auth.password });
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) {
        callback(null, { user: auth.username });
      } else {
        callback(smtpError(535, 'Authentication credentials invalid'));
      }
    },
    onMailFrom(_address, session, callback) {
      if (!session.user) return callback(smtpError(530, 'Authentication required'));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const code = fake.rcptReject.get(address.address.toLowerCase());
      if (code) return callback(smtpError(code, 'No such mailbox here'));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const rcptTo = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
        const key = rcptTo[0] ?? '';
        fake.dataAttempts.set(key, (fake.dataAttempts.get(key) ?? 0) + 1);
        const planned = fake.dataPlan.get(key)?.shift();
        if (planned && planned !== 250) {
          callback(
            smtpError(planned, planned < 500 ? 'Try again later' : 'Message rejected by policy'),
          );
          return;
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            fake.received.push({
              raw,
              parsed,
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
              rcptTo,
              user: session.user,
            });
            callback();
          },
          (error: Error) => callback(error),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => {});
  const port = (server.server.address() as AddressInfo).port;
  return {
    ...fake,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port with nothing listening on it: connecting is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function signUp(rt: TestRuntime, email: string): Promise<void> {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  expect(res.json()).toEqual({ status: 'pending' });
}

async function outboxRows(rt: TestRuntime, to: string): Promise<OutboxRow[]> {
  return rt.db.kysely.selectFrom('outbox').selectAll().where('to_address', '=', to).execute();
}

async function outboxRow(rt: TestRuntime, to: string): Promise<OutboxRow> {
  const rows = await outboxRows(rt, to);
  expect(rows).toHaveLength(1);
  return rows[0] as OutboxRow;
}

/** Polls the outbox row for `to` until `done` holds; fails with the last row seen. */
async function waitForRow(
  rt: TestRuntime,
  to: string,
  done: (row: OutboxRow) => boolean,
  timeoutMs = 10_000,
): Promise<OutboxRow> {
  const deadline = Date.now() + timeoutMs;
  let last: OutboxRow | undefined;
  while (Date.now() < deadline) {
    last = (await outboxRows(rt, to))[0];
    if (last && done(last)) return last;
    await sleep(20);
  }
  throw new Error(`outbox row for ${to} never reached the expected state: ${JSON.stringify(last)}`);
}

/** A finished attempt: the worker has released the row and recorded the outcome. */
function settled(row: OutboxRow): boolean {
  return row.locked_by === null && (row.status !== 'pending' || row.last_error !== null);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function headerText(parsed: ParsedMail, name: string): string | undefined {
  const value = parsed.headers.get(name);
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value && 'value' in value) return String(value.value);
  return String(value);
}

function addressesOf(field: ParsedMail['to']): string[] {
  if (!field) return [];
  const groups = Array.isArray(field) ? field : [field];
  return groups.flatMap((g) => g.value.map((v) => v.address ?? ''));
}

/** A transport that fails temporarily `failures` times (or forever), recording every attempt. */
function scriptedTransport(failures: number): MailTransport & { calls: OutgoingEmail[] } {
  const calls: OutgoingEmail[] = [];
  return {
    name: 'scripted',
    calls,
    async send(email) {
      calls.push(email);
      if (calls.length <= failures) {
        throw new SendError(`SMTP 421: try again later (attempt ${calls.length})`, false);
      }
    },
    async close() {},
  };
}

// ---------------------------------------------------------------------------------------------

describe('SMTP delivery to a real server', () => {
  let smtp: FakeSmtp;
  let rt: TestRuntime;

  beforeAll(async () => {
    smtp = await startFakeSmtp();
    rt = await createTestRuntime({
      env: {
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(smtp.port),
        MAIL_USERNAME: SMTP_USER,
        MAIL_PASSWORD: SMTP_PASS,
        MAIL_DEFAULT_SENDER: SENDER,
      },
    });
  });

  afterAll(async () => {
    await rt?.close();
    await smtp?.close();
  });

  it('chooses the SMTP transport when MAIL_SERVER is set', () => {
    expect(rt.transport.name).toBe('smtp');
  });

  it('sends the verification message once, authenticated, with correct headers and both parts', async () => {
    const email = 'smtp-first@example.com';
    const worker = rt.worker;
    if (!worker) throw new Error('the runtime has no worker');
    // Hold the worker so the row can be read (with its link and code) before it is sent.
    await worker.stop();
    await signUp(rt, email);
    const queued = await outboxRow(rt, email);
    expect(queued.status).toBe('pending');
    expect(queued.attempts).toBe(0);
    expect(queued.template).toBe('verify-email');
    expect(queued.message_id).toMatch(/^<[^<>@\s]+@mailproof\.test>$/);
    const data = JSON.parse(queued.payload ?? 'null') as { url: string; code: string };
    expect(data.url).toMatch(/^http:\/\/mailproof\.test\/verify\/[A-Za-z0-9_-]{22,}$/);
    expect(data.code).toMatch(/^\d{8}$/);
    // Nothing is sent inside the web request.
    expect(smtp.dataAttempts.get(email) ?? 0).toBe(0);

    worker.start();
    const sent = await waitForRow(rt, email, (row) => row.status === 'sent');
    expect(sent.attempts).toBe(1);
    expect(sent.sent_at).toBe(rt.clock.now());
    expect(sent.payload).toBeNull();
    expect(sent.last_error).toBeNull();
    expect(sent.message_id).toBe(queued.message_id);

    const mine = smtp.received.filter((r) => r.rcptTo.includes(email));
    expect(mine).toHaveLength(1);
    const { parsed, raw, mailFrom, rcptTo, user } = mine[0] as Received;

    // AUTH happened with the configured credentials before MAIL FROM.
    expect(user).toBe(SMTP_USER);
    expect(smtp.auths.length).toBeGreaterThan(0);
    for (const auth of smtp.auths) {
      expect(auth).toMatchObject({ username: SMTP_USER, password: SMTP_PASS });
    }

    // Envelope
    expect(mailFrom).toBe('no-reply@mailproof.test');
    expect(rcptTo).toEqual([email]);

    // Headers
    expect(parsed.from?.value).toEqual([
      { name: 'Mailproof Tests', address: 'no-reply@mailproof.test' },
    ]);
    expect(addressesOf(parsed.to)).toEqual([email]);
    expect(parsed.subject).toBe('Confirm your email address for Mailproof');
    expect(parsed.messageId).toBe(queued.message_id);
    expect(parsed.date).toBeInstanceOf(Date);
    expect(Number.isNaN(parsed.date?.getTime())).toBe(false);
    expect(headerText(parsed, 'mime-version')).toBe('1.0');
    expect(headerText(parsed, 'content-type')).toBe('multipart/alternative');
    const head = raw.toString('utf8').split('\r\n\r\n')[0] ?? '';
    expect(head).toMatch(/^Date: /m);
    expect(head).toMatch(/^Message-ID: /m);
    expect(head).toMatch(/^MIME-Version: 1\.0/m);
    expect(raw.toString('utf8')).toMatch(/Content-Type: text\/plain/);
    expect(raw.toString('utf8')).toMatch(/Content-Type: text\/html/);

    // Body: the HTML and the text both carry the link (built from BASE_URL) and the code.
    expect(typeof parsed.html).toBe('string');
    const html = parsed.html as string;
    expect(html).toMatch(/<html lang="en"/);
    expect(html).toContain(`href="${data.url}"`);
    const text = parsed.text ?? '';
    expect(text).toContain(data.url);
    expect(text.replace(/(\d{4}) (\d{4})/g, '$1$2')).toContain(data.code);

    // With a real mail server configured, nothing lands in the built-in inbox.
    expect(rt.inbox?.count() ?? 0).toBe(0);

    // The code in the message is the one the account accepts.
    const verify = await rt.app.inject({
      method: 'POST',
      url: '/api/verify',
      payload: { email, code: data.code },
    });
    expect(verify.statusCode).toBe(200);
    expect(verify.json()).toEqual({ status: 'verified' });
  });

  it('retries after a 451 to DATA and delivers once, with the same Message-ID', async () => {
    const email = 'smtp-451@example.com';
    smtp.dataPlan.set(email, [451]);
    await signUp(rt, email);

    const failed = await waitForRow(rt, email, settled);
    expect(failed.status).toBe('pending');
    expect(failed.attempts).toBe(1);
    expect(failed.last_error).toMatch(/451/);
    expect(failed.next_attempt_at).toBeGreaterThan(rt.clock.now());
    expect(failed.payload).not.toBeNull();
    expect(smtp.received.filter((r) => r.rcptTo.includes(email))).toHaveLength(0);

    // Not due yet: the worker keeps polling but does not retry before the backoff ends.
    await sleep(200);
    expect((await outboxRow(rt, email)).attempts).toBe(1);
    expect(smtp.dataAttempts.get(email)).toBe(1);

    rt.clock.advance(60_000);
    const sent = await waitForRow(rt, email, (row) => row.status === 'sent');
    expect(sent.attempts).toBe(2);
    expect(sent.last_error).toBeNull();
    expect(smtp.dataAttempts.get(email)).toBe(2);
    const delivered = smtp.received.filter((r) => r.rcptTo.includes(email));
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.parsed.messageId).toBe(failed.message_id);
  });

  it('dead-letters a message the server refuses with 550 after one attempt', async () => {
    const email = 'smtp-550@example.com';
    smtp.dataPlan.set(email, [550, 550, 550]);
    await signUp(rt, email);

    const dead = await waitForRow(rt, email, settled);
    expect(dead.status).toBe('dead');
    expect(dead.attempts).toBe(1);
    expect(dead.last_error).toMatch(/550/);

    // A dead letter is not retried, however much time passes.
    rt.clock.advance(24 * 3600_000);
    await sleep(250);
    const later = await outboxRow(rt, email);
    expect(later.status).toBe('dead');
    expect(later.attempts).toBe(1);
    expect(smtp.dataAttempts.get(email)).toBe(1);
    expect(smtp.received.filter((r) => r.rcptTo.includes(email))).toHaveLength(0);
  });

  it('dead-letters a message whose recipient the server rejects with 550 at RCPT', async () => {
    const email = 'smtp-no-such-user@example.com';
    smtp.rcptReject.set(email, 550);
    await signUp(rt, email);

    const dead = await waitForRow(rt, email, settled);
    expect(dead.status).toBe('dead');
    expect(dead.attempts).toBe(1);
    expect(dead.last_error).toMatch(/550/);
    expect(smtp.dataAttempts.get(email) ?? 0).toBe(0);
  });
});

describe('SMTP server down', () => {
  let rt: TestRuntime;

  beforeAll(async () => {
    rt = await createTestRuntime({
      env: {
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(await closedPort()),
        MAIL_USERNAME: SMTP_USER,
        MAIL_PASSWORD: SMTP_PASS,
        MAIL_DEFAULT_SENDER: SENDER,
      },
    });
  });

  afterAll(async () => {
    await rt?.close();
  });

  it('keeps the message pending with a backoff and the error, and keeps retrying', async () => {
    const email = 'smtp-down@example.com';
    await signUp(rt, email);

    const first = await waitForRow(rt, email, settled);
    expect(first.status).toBe('pending');
    expect(first.attempts).toBeGreaterThanOrEqual(1);
    expect(first.next_attempt_at).toBeGreaterThan(rt.clock.now());
    expect(first.last_error).toMatch(/ECONNREFUSED|ECONNECTION/);
    expect(first.payload).not.toBeNull();

    rt.clock.advance(60_000);
    const second = await waitForRow(
      rt,
      email,
      (row) => settled(row) && row.attempts > first.attempts,
    );
    expect(second.status).toBe('pending');
    expect(second.next_attempt_at).toBeGreaterThan(rt.clock.now());
    expect(second.last_error).toMatch(/ECONNREFUSED|ECONNECTION/);
    expect(second.message_id).toBe(first.message_id);
  });
});

describe('retries through an injected transport', () => {
  it('sends after temporary failures, with backoff growing between attempts', async () => {
    const transport = scriptedTransport(3);
    const rt = await createTestRuntime({ transport });
    try {
      const worker = rt.worker;
      if (!worker) throw new Error('the runtime has no worker');
      await worker.stop();
      const email = 'flaky@example.com';
      await signUp(rt, email);

      for (let attempt = 1; attempt <= 3; attempt++) {
        expect(await worker.drainOnce()).toBe(1);
        const row = await outboxRow(rt, email);
        expect(row.status).toBe('pending');
        expect(row.attempts).toBe(attempt);
        expect(row.last_error).toBe(`SMTP 421: try again later (attempt ${attempt})`);
        expect(row.locked_by).toBeNull();
        // Backoff with jitter, base 10 ms in tests: [10·2^(n-1)/2, 10·2^(n-1)).
        const wait = row.next_attempt_at - rt.clock.now();
        const ceiling = 10 * 2 ** (attempt - 1);
        expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
        expect(wait).toBeLessThan(ceiling);
        // Not due yet, so a pass handles nothing.
        expect(await worker.drainOnce()).toBe(0);
        rt.clock.advance(wait);
      }
      expect(await worker.drainOnce()).toBe(1);
      const sent = await outboxRow(rt, email);
      expect(sent.status).toBe('sent');
      expect(sent.attempts).toBe(4);
      expect(sent.last_error).toBeNull();
      expect(sent.payload).toBeNull();

      expect(transport.calls).toHaveLength(4);
      expect(transport.calls.map((c) => c.provenance.attempt)).toEqual([1, 2, 3, 4]);
      expect(new Set(transport.calls.map((c) => c.messageId))).toEqual(new Set([sent.message_id]));
      for (const call of transport.calls) {
        expect(call.to).toBe(email);
        expect(call.from).toBe(rt.config.mail.defaultSender);
        expect(call.provenance).toMatchObject({
          template: 'verify-email',
          flow: 'signup',
          outboxId: sent.id,
        });
      }
      // Every attempt renders the same message (the payload is kept until it is sent).
      expect(new Set(transport.calls.map((c) => c.html)).size).toBe(1);
      expect(await worker.drainOnce()).toBe(0);
    } finally {
      await rt.close();
    }
  });

  it('eventually sends through the running worker loop once the fault ends', async () => {
    const transport = scriptedTransport(2);
    const rt = await createTestRuntime({ transport });
    try {
      const email = 'flaky-loop@example.com';
      await signUp(rt, email);
      const deadline = Date.now() + 10_000;
      let row = await outboxRow(rt, email);
      while (row.status !== 'sent' && Date.now() < deadline) {
        rt.clock.advance(1000);
        await sleep(30);
        row = await outboxRow(rt, email);
      }
      expect(row.status).toBe('sent');
      expect(row.attempts).toBe(3);
      expect(transport.calls).toHaveLength(3);
    } finally {
      await rt.close();
    }
  });

  it('dead-letters after MAIL_MAX_ATTEMPTS temporary failures', async () => {
    const transport = scriptedTransport(Number.POSITIVE_INFINITY);
    const rt = await createTestRuntime({ transport, env: { MAIL_MAX_ATTEMPTS: '3' } });
    try {
      const worker = rt.worker;
      if (!worker) throw new Error('the runtime has no worker');
      await worker.stop();
      const email = 'always-fails@example.com';
      await signUp(rt, email);

      for (let attempt = 1; attempt <= 2; attempt++) {
        expect(await worker.drainOnce()).toBe(1);
        const row = await outboxRow(rt, email);
        expect(row.status).toBe('pending');
        expect(row.attempts).toBe(attempt);
        rt.clock.advance(3600_000);
      }
      expect(await worker.drainOnce()).toBe(1);
      const dead = await outboxRow(rt, email);
      expect(dead.status).toBe('dead');
      expect(dead.attempts).toBe(3);
      expect(dead.last_error).toBe('SMTP 421: try again later (attempt 3)');
      expect(dead.locked_by).toBeNull();
      expect(transport.calls).toHaveLength(3);

      rt.clock.advance(24 * 3600_000);
      expect(await worker.drainOnce()).toBe(0);
      expect(transport.calls).toHaveLength(3);
    } finally {
      await rt.close();
    }
  });

  it('treats a thrown 5xx from the transport as permanent and anything else as temporary', async () => {
    let failure: unknown = Object.assign(new Error('mailbox unavailable'), { responseCode: 554 });
    const calls: string[] = [];
    const transport: MailTransport = {
      name: 'throwing',
      async send(email) {
        calls.push(email.to);
        throw failure;
      },
      async close() {},
    };
    const rt = await createTestRuntime({ transport });
    try {
      const worker = rt.worker;
      if (!worker) throw new Error('the runtime has no worker');
      await worker.stop();
      await signUp(rt, 'perm@example.com');
      expect(await worker.drainOnce()).toBe(1);
      const perm = await outboxRow(rt, 'perm@example.com');
      expect(perm.status).toBe('dead');
      expect(perm.last_error).toMatch(/^SMTP 554: mailbox unavailable/);

      failure = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      await signUp(rt, 'temp@example.com');
      expect(await worker.drainOnce()).toBe(1);
      const temp = await outboxRow(rt, 'temp@example.com');
      expect(temp.status).toBe('pending');
      expect(temp.last_error).toMatch(/^ECONNRESET: socket hang up/);
      expect(calls).toEqual(['perm@example.com', 'temp@example.com']);
    } finally {
      await rt.close();
    }
  });
});

describe('classifySmtpError', () => {
  it('makes 5xx replies permanent and 4xx replies temporary', () => {
    const perm = classifySmtpError({ responseCode: 550, message: 'No such user' });
    expect(perm).toBeInstanceOf(SendError);
    expect(perm.permanent).toBe(true);
    expect(perm.message).toBe('SMTP 550: No such user');
    const temp = classifySmtpError({ responseCode: 451, message: 'Try later' });
    expect(temp.permanent).toBe(false);
    expect(temp.message).toBe('SMTP 451: Try later');
  });

  it('retries network errors and unknown failures', () => {
    expect(classifySmtpError({ code: 'ECONNREFUSED', message: 'refused' }).permanent).toBe(false);
    expect(classifySmtpError({ code: 'ETIMEDOUT' }).message).toBe('ETIMEDOUT: ');
    expect(classifySmtpError(undefined).permanent).toBe(false);
    expect(classifySmtpError(null).message).toBe('send failed: ');
  });

  it('keeps the error on one line and short', () => {
    const error = classifySmtpError({
      responseCode: 421,
      message: `line one\r\nline two ${'x'.repeat(1000)}`,
    });
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message.startsWith('SMTP 421: line one line two')).toBe(true);
    expect(error.message.length).toBeLessThanOrEqual('SMTP 421: '.length + 300);
  });
});

describe('backoffMs', () => {
  function fixedRandom(pick: (maxExclusive: number) => number): Random & { asked: number[] } {
    const asked: number[] = [];
    return {
      asked,
      bytes: (size) => Buffer.alloc(size),
      int: (maxExclusive) => {
        asked.push(maxExclusive);
        return pick(maxExclusive);
      },
    };
  }
  const lowest = fixedRandom(() => 0);
  const highest = fixedRandom((max) => max - 1);

  it('doubles with each attempt', () => {
    const base = 1000;
    const max = 3_600_000;
    for (let attempt = 1; attempt <= 10; attempt++) {
      const ceiling = base * 2 ** (attempt - 1);
      expect(backoffMs(attempt, lowest, base, max)).toBe(ceiling / 2);
      expect(backoffMs(attempt, highest, base, max)).toBe(ceiling - 1);
      if (attempt > 1) {
        expect(backoffMs(attempt, lowest, base, max)).toBe(
          2 * backoffMs(attempt - 1, lowest, base, max),
        );
      }
    }
  });

  it('draws the jitter from half the ceiling', () => {
    const random = fixedRandom(() => 123);
    expect(backoffMs(3, random, 1000, 1_000_000)).toBe(2000 + 123);
    expect(random.asked).toEqual([2000]);
  });

  it('is capped at the maximum', () => {
    const max = 60_000;
    for (const attempt of [8, 20, 100]) {
      expect(backoffMs(attempt, lowest, 1000, max)).toBe(max / 2);
      expect(backoffMs(attempt, highest, 1000, max)).toBe(max - 1);
    }
  });

  it('treats attempt 0 like attempt 1 and never returns less than half the base', () => {
    expect(backoffMs(0, lowest, 5000, 3_600_000)).toBe(2500);
    expect(backoffMs(1, lowest, 5000, 3_600_000)).toBe(2500);
    expect(backoffMs(1, lowest, 1, 1000)).toBeGreaterThanOrEqual(0);
  });

  it('spreads retries with a real random source, within bounds', () => {
    const real: Random = {
      bytes: (size) => Buffer.alloc(size),
      int: (max) => Math.floor(Math.random() * max),
    };
    const samples = Array.from({ length: 200 }, () => backoffMs(4, real, 1000, 3_600_000));
    for (const sample of samples) {
      expect(sample).toBeGreaterThanOrEqual(4000);
      expect(sample).toBeLessThan(8000);
    }
    expect(new Set(samples).size).toBeGreaterThan(50);
  });
});

// ---------------------------------------------------------------------------------------------
// TLS (STARTTLS and implicit), certificate verification with MAIL_CA_FILE, AUTH over TLS, DKIM.

interface TlsFiles {
  dir: string;
  keyPem: string;
  certPem: string;
  caFile: string;
}

/** A self-signed certificate for 127.0.0.1 made with the openssl CLI, as a private relay has. */
function selfSignedCertificate(): TlsFiles {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const caFile = path.join(dir, 'ca.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      caFile,
      '-days',
      '2',
      '-subj',
      '/CN=smtp.mailproof.test',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return {
    dir,
    keyPem: readFileSync(keyFile, 'utf8'),
    certPem: readFileSync(caFile, 'utf8'),
    caFile,
  };
}

interface TlsSmtp {
  port: number;
  received: Array<{ raw: Buffer; secure: boolean; user: string | undefined }>;
  auths: Array<{ username?: string; secure: boolean }>;
  close(): Promise<void>;
}

/** A real SMTP server with TLS that refuses AUTH and mail on a plain connection. */
async function startTlsSmtp(
  tls: TlsFiles,
  options: { implicit: boolean; offerStartTls?: boolean },
): Promise<TlsSmtp> {
  const received: TlsSmtp['received'] = [];
  const auths: TlsSmtp['auths'] = [];
  const server = new SMTPServer({
    name: 'tls-provider.test',
    secure: options.implicit,
    key: tls.keyPem,
    cert: tls.certPem,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    disabledCommands: options.offerStartTls === false ? ['STARTTLS'] : [],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
    onAuth(auth, session, callback) {
      auths.push({ username: auth.username, secure: session.secure });
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) {
        return callback(null, { user: auth.username });
      }
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onMailFrom(_address, session, callback) {
      if (!session.secure) return callback(smtpError(530, 'Must issue a STARTTLS command first'));
      if (!session.user) return callback(smtpError(530, 'Authentication required'));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({ raw: Buffer.concat(chunks), secure: session.secure, user: session.user });
        callback();
      });
    },
  });
  // A client that gives up on our certificate makes the server report the closed handshake.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    received,
    auths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function tlsEnv(port: number, extra: Record<string, string>): Record<string, string> {
  return {
    MAIL_SERVER: '127.0.0.1',
    MAIL_PORT: String(port),
    MAIL_USERNAME: SMTP_USER,
    MAIL_PASSWORD: SMTP_PASS,
    MAIL_DEFAULT_SENDER: SENDER,
    ...extra,
  };
}

/** A logger whose JSON lines the test can read. */
function memoryLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return {
    log: pino({ level: 'info' }, stream),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('SMTP over TLS with certificate verification', () => {
  let tls: TlsFiles;

  beforeAll(() => {
    tls = selfSignedCertificate();
  });

  afterAll(() => {
    rmSync(tls.dir, { recursive: true, force: true });
  });

  for (const mode of ['STARTTLS', 'implicit TLS'] as const) {
    const implicit = mode === 'implicit TLS';
    const tlsSetting: Record<string, string> = implicit
      ? { MAIL_USE_SSL: 'true' }
      : { MAIL_USE_TLS: 'true' };

    it(`${mode}: trusts the server through MAIL_CA_FILE, authenticates over TLS and delivers`, async () => {
      const smtp = await startTlsSmtp(tls, { implicit });
      const rt = await createTestRuntime({
        env: tlsEnv(smtp.port, { ...tlsSetting, MAIL_CA_FILE: tls.caFile }),
      });
      try {
        const email = `tls-ok-${implicit ? 'ssl' : 'starttls'}@example.com`;
        await signUp(rt, email);
        const sent = await waitForRow(rt, email, (row) => row.status === 'sent');
        expect(sent.attempts).toBe(1);
        expect(smtp.received).toHaveLength(1);
        expect(smtp.received[0]?.secure).toBe(true);
        expect(smtp.received[0]?.user).toBe(SMTP_USER);
        expect(smtp.auths.length).toBeGreaterThan(0);
        expect(smtp.auths.every((a) => a.secure && a.username === SMTP_USER)).toBe(true);
      } finally {
        await rt.close();
        await smtp.close();
      }
    });

    it(`${mode}: without the CA the certificate is refused; the message stays queued and the log says why`, async () => {
      const smtp = await startTlsSmtp(tls, { implicit });
      const { log, lines } = memoryLogger();
      const rt = await createTestRuntime({ env: tlsEnv(smtp.port, tlsSetting), log });
      try {
        const email = `tls-untrusted-${implicit ? 'ssl' : 'starttls'}@example.com`;
        await signUp(rt, email);
        const failed = await waitForRow(rt, email, settled);
        // A configuration problem, not the message's: retried, so nothing is lost once fixed.
        expect(failed.status).toBe('pending');
        expect(failed.payload).not.toBeNull();
        expect(failed.last_error).toMatch(/^TLS certificate of the mail server not trusted/);
        expect(failed.last_error).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(failed.last_error).toContain('MAIL_CA_FILE');
        expect(smtp.received).toHaveLength(0);
        // No credentials went over a connection whose server could not be verified.
        expect(smtp.auths).toHaveLength(0);
        // The worker logs just after its UPDATE commits, which the test may read first.
        let logged = lines().find((l) => l.outboxId === failed.id);
        for (let i = 0; i < 100 && !logged; i += 1) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          logged = lines().find((l) => l.outboxId === failed.id);
        }
        expect(logged?.level).toBe(50);
        expect(logged?.msg).toMatch(/certificate problem/);
        expect(JSON.stringify(lines())).not.toContain(email);
      } finally {
        await rt.close();
        await smtp.close();
      }
    });
  }

  it('STARTTLS required but not offered: retried, never sent in clear', async () => {
    const smtp = await startTlsSmtp(tls, { implicit: false, offerStartTls: false });
    const rt = await createTestRuntime({
      env: tlsEnv(smtp.port, { MAIL_USE_TLS: 'true', MAIL_CA_FILE: tls.caFile }),
    });
    try {
      const email = 'tls-not-offered@example.com';
      await signUp(rt, email);
      const failed = await waitForRow(rt, email, settled);
      expect(failed.status).toBe('pending');
      expect(failed.last_error).toMatch(/^ETLS/);
      expect(smtp.auths).toHaveLength(0);
      expect(smtp.received).toHaveLength(0);
    } finally {
      await rt.close();
      await smtp.close();
    }
  });

  it('wrong credentials (535) are a configuration problem: retried, not dead-lettered', async () => {
    const smtp = await startTlsSmtp(tls, { implicit: false });
    const rt = await createTestRuntime({
      env: tlsEnv(smtp.port, {
        MAIL_USE_TLS: 'true',
        MAIL_CA_FILE: tls.caFile,
        MAIL_PASSWORD: 'not the password',
      }),
    });
    try {
      const email = 'tls-bad-auth@example.com';
      await signUp(rt, email);
      const failed = await waitForRow(rt, email, settled);
      expect(failed.status).toBe('pending');
      expect(failed.last_error).toMatch(/^EAUTH 535/);
      expect(failed.last_error).not.toContain('not the password');
    } finally {
      await rt.close();
      await smtp.close();
    }
  });
});

// A DKIM verifier (RFC 6376, relaxed/relaxed, rsa-sha256), written here from the RFC so the
// signature is checked by code that shares nothing with nodemailer's signer.

function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}

function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trim().toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

function dkimTags(field: string): Map<string, string> {
  const value = field.slice(field.indexOf(':') + 1).replace(/\r\n/g, '');
  const tags = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim(), part.slice(eq + 1).replace(/\s+/g, ''));
  }
  return tags;
}

/** Verifies the message's DKIM-Signature against `dnsRecord` (the selector's TXT record). */
function verifyDkim(raw: string, dnsRecord: string): { ok: boolean; tags: Map<string, string> } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split + 2);
  const body = raw.slice(split + 4);
  const fields = head.split(/\r\n(?![ \t])/).filter(Boolean);
  const signatureField = fields.find((f) => /^dkim-signature:/i.test(f));
  if (!signatureField) throw new Error('no DKIM-Signature header');
  const tags = dkimTags(signatureField);
  const bodyHash = createHash('sha256').update(relaxedBody(body), 'utf8').digest('base64');
  if (bodyHash !== tags.get('bh')) return { ok: false, tags };

  // Each name in h= takes the last not-yet-used field of that name (RFC 6376 §5.4.2).
  const remaining = fields.filter((f) => f !== signatureField);
  const signed: string[] = [];
  for (const name of (tags.get('h') ?? '').split(':')) {
    const index = remaining.findLastIndex((f) =>
      relaxedHeader(f).startsWith(`${name.toLowerCase()}:`),
    );
    if (index === -1) continue;
    signed.push(`${relaxedHeader(remaining[index] as string)}\r\n`);
    remaining.splice(index, 1);
  }
  const unsignedSignature = relaxedHeader(signatureField).replace(/(^|;)(\s*)b=[^;]*/, '$1$2b=');
  const data = signed.join('') + unsignedSignature;

  const publicKeyBase64 = /(?:^|;)\s*p=([^;]+)/.exec(dnsRecord)?.[1]?.replace(/\s+/g, '') ?? '';
  const publicKey = createPublicKey({
    key: Buffer.from(publicKeyBase64, 'base64'),
    format: 'der',
    type: 'spki',
  });
  const ok = verify(
    'RSA-SHA256',
    Buffer.from(data, 'utf8'),
    publicKey,
    Buffer.from(tags.get('b') ?? '', 'base64'),
  );
  return { ok, tags };
}

describe('DKIM signing', () => {
  it('signs every message with DKIM_DOMAIN and DKIM_SELECTOR; the signature verifies against the published key', async () => {
    const smtp = await startFakeSmtp();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyDir = mkdtempSync(path.join(tmpdir(), 'mailproof-dkim-'));
    const keyFile = path.join(keyDir, 'dkim.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    // What the deployer publishes at mail2026._domainkey.mailproof.test.
    const dnsRecord = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
    const rt = await createTestRuntime({
      env: {
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: String(smtp.port),
        MAIL_USERNAME: SMTP_USER,
        MAIL_PASSWORD: SMTP_PASS,
        MAIL_DEFAULT_SENDER: SENDER,
        DKIM_DOMAIN: 'mailproof.test',
        DKIM_SELECTOR: 'mail2026',
        DKIM_PRIVATE_KEY: keyFile,
      },
    });
    try {
      const email = 'dkim@example.com';
      await signUp(rt, email);
      await waitForRow(rt, email, (row) => row.status === 'sent');
      const received = smtp.received.find((r) => r.rcptTo.includes(email));
      if (!received) throw new Error('the message did not arrive');
      const raw = received.raw.toString('utf8');
      expect(raw).toMatch(/^DKIM-Signature: /m);

      const { ok, tags } = verifyDkim(raw, dnsRecord);
      expect(tags.get('v')).toBe('1');
      expect(tags.get('a')).toBe('rsa-sha256');
      expect(tags.get('c')).toBe('relaxed/relaxed');
      expect(tags.get('d')).toBe('mailproof.test');
      expect(tags.get('s')).toBe('mail2026');
      const signedHeaders = (tags.get('h') ?? '').toLowerCase().split(':');
      for (const name of ['from', 'to', 'subject', 'date', 'message-id']) {
        expect(signedHeaders).toContain(name);
      }
      expect(ok).toBe(true);

      // The verifier is not a rubber stamp: a changed body or subject, or another key, fails.
      expect(verifyDkim(raw.replace('Confirm', 'Conf1rm'), dnsRecord).ok).toBe(false);
      const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
      const otherRecord = `v=DKIM1; k=rsa; p=${otherKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
      expect(verifyDkim(raw, otherRecord).ok).toBe(false);
    } finally {
      await rt.close();
      await smtp.close();
      rmSync(keyDir, { recursive: true, force: true });
    }
  });
});

describe('TLS and DKIM settings', () => {
  const base = { NODE_ENV: 'test', BASE_URL: 'http://mailproof.test' };
  const load = (env: Record<string, string>) =>
    loadConfig({ dotenvPath: false, env: { ...base, ...env } });
  const pem = generateKeyPairSync('rsa', { modulusLength: 1024 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
  const dkim = { DKIM_DOMAIN: 'mailproof.test', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: pem };

  it('MAIL_CA_FILE that cannot be read stops start-up naming the variable', () => {
    expect(() => load({ MAIL_USE_TLS: 'true', MAIL_CA_FILE: '/nonexistent/ca.pem' })).toThrow(
      new ConfigError('MAIL_CA_FILE cannot be read: "/nonexistent/ca.pem" (ENOENT)'),
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-ca-'));
    try {
      writeFileSync(path.join(dir, 'not-a-cert.pem'), 'hello');
      expect(() =>
        load({ MAIL_USE_SSL: 'true', MAIL_CA_FILE: path.join(dir, 'not-a-cert.pem') }),
      ).toThrow(/^MAIL_CA_FILE must be a PEM file/);
      // A CA for a connection that would not use TLS is a mistake worth stopping for.
      expect(() => load({ MAIL_CA_FILE: path.join(dir, 'not-a-cert.pem') })).toThrow(
        /^MAIL_CA_FILE is set but the connection would not use TLS/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('DKIM needs all three settings or none', () => {
    expect(load({}).mail.dkim).toBeNull();
    expect(load(dkim).mail.dkim).toEqual({
      domain: 'mailproof.test',
      selector: 's1',
      privateKey: pem.trim(),
    });
    expect(() => load({ DKIM_DOMAIN: 'mailproof.test' })).toThrow(
      /^DKIM_SELECTOR and DKIM_PRIVATE_KEY must be set too/,
    );
    expect(() => load({ DKIM_DOMAIN: 'mailproof.test', DKIM_SELECTOR: 's1' })).toThrow(
      /^DKIM_PRIVATE_KEY must be set too/,
    );
  });

  it('accepts the key as PEM text with \\n escapes, and refuses a bad key without quoting it', () => {
    const escaped = pem.trim().replace(/\n/g, '\\n');
    expect(load({ ...dkim, DKIM_PRIVATE_KEY: escaped }).mail.dkim?.privateKey).toBe(pem.trim());
    const bad = '-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----';
    expect(() => load({ ...dkim, DKIM_PRIVATE_KEY: bad })).toThrow(
      new ConfigError('DKIM_PRIVATE_KEY is not a PEM private key'),
    );
    // A value that is neither PEM nor a readable file may be a mangled secret: never echoed.
    let message = '';
    try {
      load({ ...dkim, DKIM_PRIVATE_KEY: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('DKIM_PRIVATE_KEY cannot be read: the file it names (ENOENT)');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(() => load({ ...dkim, DKIM_PRIVATE_KEY: ec })).toThrow(/must be an RSA private key/);
  });

  it('DKIM_DOMAIN must align with the sender (DMARC) and be a domain; the selector a DNS label', () => {
    expect(() => load({ ...dkim, MAIL_DEFAULT_SENDER: 'Site <hi@other.example>' })).toThrow(
      /^DKIM_DOMAIN must be the domain of MAIL_DEFAULT_SENDER \(other\.example\)/,
    );
    expect(
      load({ ...dkim, MAIL_DEFAULT_SENDER: 'Site <hi@mail.mailproof.test>' }).mail.dkim?.domain,
    ).toBe('mailproof.test');
    expect(() => load({ ...dkim, DKIM_DOMAIN: 'not a domain' })).toThrow(/^DKIM_DOMAIN must be/);
    expect(() => load({ ...dkim, DKIM_SELECTOR: 'bad selector' })).toThrow(/^DKIM_SELECTOR must/);
  });

  it('the private key is one of the values kept out of logs', () => {
    expect(secretValues(load(dkim))).toContain(pem.trim());
  });
});
