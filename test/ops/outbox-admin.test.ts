// §4 dead letters "visible and re-queueable by CLI and admin page": the shared outbox operations,
// the /admin/outbox page (basic auth with ADMIN_TOKEN, CSRF on its forms) and the CLI commands.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxRow } from '../../src/db/schema.ts';
import {
  formatAge,
  listOutbox,
  outboxOverview,
  purgeOutbox,
  retryDeadLetters,
} from '../../src/mail/outbox-admin.ts';
import { type MailTransport, type OutgoingEmail, SendError } from '../../src/mail/transport.ts';
import { cookieHeader, csrfOf, getPage, type Jar, postForm } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';
const ADMIN_TOKEN = 'operator-admin-token-0123456789';
const AUTH = `Basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`;
const DAY = 86_400_000;

/** Refuses (550) mail to addresses containing "bounce" until `accept()`; records every send. */
function bouncingTransport() {
  let refusing = true;
  const sent: OutgoingEmail[] = [];
  const transport: MailTransport & { sent: OutgoingEmail[]; accept(): void } = {
    name: 'bouncing',
    sent,
    accept: () => {
      refusing = false;
    },
    async send(email) {
      if (refusing && email.to.includes('bounce')) {
        throw new SendError(`SMTP 550: 5.1.1 <${email.to}>: no such mailbox`, true);
      }
      sent.push(email);
    },
    async close() {},
  };
  return transport;
}

async function signUp(rt: TestRuntime, email: string) {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
}

async function rowFor(rt: TestRuntime, to: string): Promise<OutboxRow> {
  return rt.db.kysely
    .selectFrom('outbox')
    .selectAll()
    .where('to_address', '=', to)
    .executeTakeFirstOrThrow();
}

async function drain(rt: TestRuntime) {
  const worker = rt.worker;
  if (!worker) throw new Error('no worker');
  while ((await worker.drainOnce()) > 0) {}
}

describe('outbox operations', () => {
  let rt: TestRuntime;
  let transport: ReturnType<typeof bouncingTransport>;

  beforeEach(async () => {
    transport = bouncingTransport();
    rt = await createTestRuntime({ transport, env: { ADMIN_TOKEN } });
    await rt.worker?.stop();
    return () => rt.close();
  });

  it('lists newest first with recipients redacted and no payload', async () => {
    await signUp(rt, 'first-bounce@example.com');
    rt.clock.advance(1000);
    await signUp(rt, 'second@example.org');
    await drain(rt);

    const all = await listOutbox(rt.db.kysely);
    expect(all.map((e) => e.recipient)).toEqual(['s***@***.org', 'f***@***.com']);
    expect(all.map((e) => e.status)).toEqual(['sent', 'dead']);
    const dead = all[1];
    expect(dead).toMatchObject({
      kind: 'email',
      template: 'verify-email',
      flow: 'signup',
      attempts: 1,
      sentAt: null,
    });
    // The server's reply quoted the address; the listing does not.
    expect(dead?.lastError).toBe('SMTP 550: 5.1.1 <f***@***.com>: no such mailbox');
    expect(JSON.stringify(all)).not.toContain('example.com');
    expect(JSON.stringify(all)).not.toMatch(/verify\/|"code"|payload/);

    expect((await listOutbox(rt.db.kysely, { status: 'dead' })).map((e) => e.id)).toEqual([
      dead?.id,
    ]);
    expect(await listOutbox(rt.db.kysely, { status: 'pending' })).toEqual([]);
    expect(await listOutbox(rt.db.kysely, { limit: 1 })).toHaveLength(1);
  });

  it('re-queues one dead letter with fresh attempts and its last error; the worker sends it', async () => {
    await signUp(rt, 'one-bounce@example.com');
    await signUp(rt, 'two-bounce@example.com');
    await drain(rt);
    const dead = await rowFor(rt, 'one-bounce@example.com');
    expect(dead.status).toBe('dead');

    transport.accept();
    rt.clock.advance(5000);
    expect(await retryDeadLetters(rt.db.kysely, { id: dead.id }, rt.clock.now())).toBe(1);
    const requeued = await rowFor(rt, 'one-bounce@example.com');
    expect(requeued).toMatchObject({
      status: 'pending',
      attempts: 0,
      next_attempt_at: rt.clock.now(),
      locked_by: null,
      last_error: dead.last_error,
      payload: dead.payload,
    });
    // The other dead letter is untouched.
    expect((await rowFor(rt, 'two-bounce@example.com')).status).toBe('dead');

    await drain(rt);
    const sent = await rowFor(rt, 'one-bounce@example.com');
    expect(sent).toMatchObject({ status: 'sent', attempts: 1, last_error: null, payload: null });
    const delivered = transport.sent.find((e) => e.to === 'one-bounce@example.com');
    expect(delivered?.messageId).toBe(dead.message_id);
    expect(delivered?.provenance.previousError).toMatch(/^SMTP 550/);
  });

  it('re-queues every dead letter at once, and never a pending or sent message', async () => {
    await signUp(rt, 'a-bounce@example.com');
    await signUp(rt, 'b-bounce@example.com');
    await signUp(rt, 'delivered@example.com');
    await drain(rt);
    await signUp(rt, 'still-pending@example.com');
    const sent = await rowFor(rt, 'delivered@example.com');
    const pending = await rowFor(rt, 'still-pending@example.com');

    expect(await retryDeadLetters(rt.db.kysely, { id: sent.id }, rt.clock.now())).toBe(0);
    expect(await retryDeadLetters(rt.db.kysely, { id: pending.id }, rt.clock.now())).toBe(0);
    expect(await retryDeadLetters(rt.db.kysely, { id: 'no-such-id' }, rt.clock.now())).toBe(0);
    expect(await retryDeadLetters(rt.db.kysely, { allDead: true }, rt.clock.now())).toBe(2);
    expect(await rowFor(rt, 'delivered@example.com')).toEqual(sent);
    expect(await rowFor(rt, 'still-pending@example.com')).toEqual(pending);
    expect((await outboxOverview(rt.db.kysely, rt.clock.now())).counts).toEqual({
      pending: 3,
      sent: 1,
      dead: 0,
    });
  });

  it('purges sent messages older than the age and dead letters; pending ones never', async () => {
    await signUp(rt, 'old@example.com');
    await signUp(rt, 'old-bounce@example.com');
    await drain(rt);
    rt.clock.advance(8 * DAY);
    await signUp(rt, 'recent@example.com');
    await drain(rt);
    await signUp(rt, 'waiting@example.com');

    const now = rt.clock.now();
    expect(await purgeOutbox(rt.db.kysely, { sentOlderThanMs: 7 * DAY }, now)).toEqual({
      sent: 1,
      dead: 0,
    });
    expect(await purgeOutbox(rt.db.kysely, { dead: true }, now)).toEqual({ sent: 0, dead: 1 });
    expect(await purgeOutbox(rt.db.kysely, { sentOlderThanMs: 0, dead: true }, now + 1)).toEqual({
      sent: 1,
      dead: 0,
    });
    const left = await listOutbox(rt.db.kysely);
    expect(left.map((e) => [e.recipient, e.status])).toEqual([['w***@***.com', 'pending']]);
  });

  it('reports the age of the oldest pending message', async () => {
    expect(await outboxOverview(rt.db.kysely, rt.clock.now())).toEqual({
      counts: { pending: 0, sent: 0, dead: 0 },
      oldestPendingSeconds: null,
    });
    await signUp(rt, 'aging@example.com');
    rt.clock.advance(90_000);
    await signUp(rt, 'younger@example.com');
    const overview = await outboxOverview(rt.db.kysely, rt.clock.now());
    expect(overview.counts.pending).toBe(2);
    expect(overview.oldestPendingSeconds).toBe(90);
  });
});

describe('formatAge', () => {
  it('uses the largest whole unit', () => {
    expect([0, 59, 60, 3599, 3600, 86_399, 86_400, 10 * 86_400].map(formatAge)).toEqual([
      '0s',
      '59s',
      '1m',
      '59m',
      '1h',
      '23h',
      '1d',
      '10d',
    ]);
  });
});

describe('/admin/outbox', () => {
  let rt: TestRuntime;
  let transport: ReturnType<typeof bouncingTransport>;

  beforeAll(async () => {
    transport = bouncingTransport();
    rt = await createTestRuntime({ transport, env: { ADMIN_TOKEN } });
    await rt.worker?.stop();
  });

  afterAll(async () => {
    await rt?.close();
  });

  async function adminPage(jar: Jar) {
    const res = await rt.app.inject({
      url: '/admin/outbox',
      headers: { authorization: AUTH, cookie: cookieHeader(jar) },
    });
    for (const cookie of res.cookies) jar[cookie.name] = cookie.value;
    return res;
  }

  async function adminPost(url: string, fields: Record<string, string>, jar: Jar) {
    const res = await rt.app.inject({
      method: 'POST',
      url,
      headers: {
        authorization: AUTH,
        'content-type': 'application/x-www-form-urlencoded',
        cookie: cookieHeader(jar),
      },
      payload: new URLSearchParams(fields).toString(),
    });
    for (const cookie of res.cookies) jar[cookie.name] = cookie.value;
    return res;
  }

  it('asks for the admin password, on the page and on every form', async () => {
    for (const headers of [{}, { authorization: 'Basic Zm9vOmJhcg==' }]) {
      const page = await rt.app.inject({ url: '/admin/outbox', headers });
      expect(page.statusCode).toBe(401);
      expect(page.headers['www-authenticate']).toMatch(/^Basic realm=/);
      const post = await rt.app.inject({
        method: 'POST',
        url: '/admin/outbox/retry',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'all=dead',
      });
      expect(post.statusCode).toBe(401);
    }
  });

  it('shows the counts and the dead letters, redacted, with a Retry button each', async () => {
    await signUp(rt, 'page-bounce@example.com');
    await signUp(rt, 'page-ok@example.com');
    await drain(rt);
    await signUp(rt, 'page-waiting@example.com');
    const res = await adminPage({});
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const html = res.body;
    expect(html).toMatch(/<dt>Pending<\/dt><dd>1 \(oldest waiting 0s\)<\/dd>/);
    expect(html).toMatch(/<dt>Sent<\/dt><dd>1<\/dd>/);
    expect(html).toMatch(/<dt>Dead letters<\/dt><dd>1<\/dd>/);
    expect(html).toContain('p***@***.com');
    expect(html).toMatch(/SMTP 550: 5\.1\.1 &lt;p\*\*\*@\*\*\*\.com(&gt;|>): no such mailbox/);
    expect(html).not.toContain('page-bounce@example.com');
    expect(html).not.toContain('/verify/');
    const dead = await rowFor(rt, 'page-bounce@example.com');
    expect(html).toContain(`name="id" value="${dead.id}"`);
    expect(html).toContain('Retry all dead');
    expect(html).toContain('action="/admin/outbox/purge"');
  });

  it('retries one dead letter from its button (CSRF required) and says so', async () => {
    const jar: Jar = {};
    const page = await adminPage(jar);
    const dead = await rowFor(rt, 'page-bounce@example.com');

    const forged = await adminPost('/admin/outbox/retry', { id: dead.id }, jar);
    expect(forged.statusCode).toBe(403);
    expect((await rowFor(rt, 'page-bounce@example.com')).status).toBe('dead');

    const res = await adminPost(
      '/admin/outbox/retry',
      { _csrf: csrfOf(page.body), id: dead.id },
      jar,
    );
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin/outbox');
    expect((await rowFor(rt, 'page-bounce@example.com')).status).toBe('pending');
    const after = await adminPage(jar);
    expect(after.body).toContain('Re-queued 1 message.');
    expect(after.body).toContain('No dead letters.');
  });

  it('"Retry all dead" re-queues every dead letter', async () => {
    await drain(rt);
    await signUp(rt, 'all-1-bounce@example.com');
    await drain(rt);
    expect((await outboxOverview(rt.db.kysely, rt.clock.now())).counts.dead).toBe(2);
    const jar: Jar = {};
    const page = await adminPage(jar);
    const res = await adminPost(
      '/admin/outbox/retry',
      { _csrf: csrfOf(page.body), all: 'dead' },
      jar,
    );
    expect(res.statusCode).toBe(303);
    expect((await outboxOverview(rt.db.kysely, rt.clock.now())).counts.dead).toBe(0);
    expect((await adminPage(jar)).body).toContain('Re-queued 2 messages.');
    transport.accept();
    await drain(rt);
    expect((await outboxOverview(rt.db.kysely, rt.clock.now())).counts).toMatchObject({
      pending: 0,
      dead: 0,
    });
  });

  it('purges from its form and refuses a bad number of days', async () => {
    const jar: Jar = {};
    let page = await adminPage(jar);
    const bad = await adminPost(
      '/admin/outbox/purge',
      { _csrf: csrfOf(page.body), sent_older_than_days: '-3' },
      jar,
    );
    expect(bad.statusCode).toBe(303);
    page = await adminPage(jar);
    expect(page.body).toContain('Enter a whole number of days');
    const sentBefore = (await outboxOverview(rt.db.kysely, rt.clock.now())).counts.sent;
    expect(sentBefore).toBeGreaterThan(0);

    rt.clock.advance(2 * DAY);
    const res = await adminPost(
      '/admin/outbox/purge',
      { _csrf: csrfOf(page.body), sent_older_than_days: '1', dead: 'on' },
      jar,
    );
    expect(res.statusCode).toBe(303);
    expect((await adminPage(jar)).body).toContain(
      `Deleted ${sentBefore} sent message${sentBefore === 1 ? '' : 's'} and 0 dead letters.`,
    );
    expect((await outboxOverview(rt.db.kysely, rt.clock.now())).counts.sent).toBe(0);
  });

  it('does not exist without ADMIN_TOKEN', async () => {
    const bare = await createTestRuntime({ worker: false });
    try {
      const page = await getPage(bare, '/admin/outbox');
      expect(page.statusCode).toBe(404);
      const post = await postForm(bare, '/admin/outbox/retry', { all: 'dead' }, {});
      expect(post.statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

describe('mailproof outbox list | retry | purge', () => {
  const BIN = path.resolve('bin/mailproof.js');
  let rt: TestRuntime;

  beforeAll(async () => {
    rt = await createTestRuntime({ transport: bouncingTransport() });
    await rt.worker?.stop();
  });

  afterAll(async () => {
    await rt?.close();
  });

  // Each call starts a process (a few seconds on a busy machine): the tests below get time for it.
  function cli(...args: string[]) {
    return spawnSync(process.execPath, [BIN, 'outbox', ...args], {
      cwd: rt.dataDir,
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: rt.dataDir,
        DATABASE_URL: rt.config.databaseUrl,
        NODE_ENV: 'test',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  it('lists, retries by id and purges, printing no address or payload', async () => {
    await signUp(rt, 'cli-bounce@example.com');
    await signUp(rt, 'cli-ok@example.com');
    await drain(rt);
    const dead = await rowFor(rt, 'cli-bounce@example.com');

    const list = cli('list', '--status', 'dead', '--limit', '5');
    expect(list.status).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toBe('id\tstatus\tattempts\ttemplate\tflow\tage\tto\tlast error');
    expect(lines).toHaveLength(2);
    expect(lines[1]?.split('\t')).toEqual([
      dead.id,
      'dead',
      '1',
      'verify-email',
      'signup',
      expect.stringMatching(/^\d+[smhd]$/),
      'c***@***.com',
      'SMTP 550: 5.1.1 <c***@***.com>: no such mailbox',
    ]);
    const everything = cli('list');
    expect(everything.stdout).not.toContain('@example.com');
    expect(everything.stdout).not.toContain('/verify/');

    const retried = cli('retry', dead.id);
    expect(retried.status).toBe(0);
    expect(retried.stdout).toContain('Re-queued 1 dead letter');
    expect((await rowFor(rt, 'cli-bounce@example.com')).status).toBe('pending');
    const again = cli('retry', dead.id);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`no dead letter with id ${dead.id}`);

    const purge = cli('purge', '--sent-older-than', '0s');
    expect(purge.status).toBe(0);
    expect(purge.stdout).toContain('Deleted 1 sent message(s) and 0 dead letter(s).');

    const status = cli('status');
    expect(status.stdout).toMatch(/^pending 1\nsent {4}0\ndead {4}0\noldest pending: \d+[smhd]\n/);
  }, 120_000);

  it('retries a message whose id starts with "-" or "--" (one id in 64, one in 4,096), not reading it as an option', async () => {
    // Both shapes, chosen here rather than left to the random id: "-" then a letter, and "--".
    for (const [address, prefix] of [
      ['cli-bounce-dash@example.com', '-A'],
      ['cli-bounce-dashes@example.com', '--'],
    ] as const) {
      await signUp(rt, address);
      await drain(rt);
      const dead = await rowFor(rt, address);
      expect(dead.status).toBe('dead');
      const dashed = `${prefix}${dead.id.slice(2)}`;
      await rt.db.kysely
        .updateTable('outbox')
        .set({ id: dashed })
        .where('id', '=', dead.id)
        .execute();

      const retried = cli('retry', dashed);
      expect({ dashed, status: retried.status, stderr: retried.stderr }).toEqual({
        dashed,
        status: 0,
        stderr: '',
      });
      expect(retried.stdout).toContain('Re-queued 1 dead letter');
      expect((await rowFor(rt, address)).status).toBe('pending');
    }
  }, 60_000);

  it('still refuses an unknown option to retry with usage and exit code 2', () => {
    const result = cli('retry', '--frobnicate');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Usage: mailproof <command>');
  }, 30_000);

  it('refuses bad arguments with usage and exit code 2', () => {
    const cases = [['list', '--status', 'lost'], ['retry'], ['purge', '--frobnicate']];
    // Each a process of its own (a second or two each), so only a few.
    for (const args of cases) {
      const result = cli(...args);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toContain('Usage: mailproof <command>');
    }
  }, 60_000);
});
