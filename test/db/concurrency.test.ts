// The guarantees that rest on the database, checked on each one (SQLite, PostgreSQL, MariaDB):
// single-use links and codes, the code attempt limit and the outbox lease hold under parallel
// requests, and values come back as written (numbers, utf8mb4 text, byte-exact unique keys).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/accounts/password.ts';
import { newId } from '../../src/clock.ts';
import { dialectOf } from '../../src/db/dialect.ts';
import { enqueueEmail, outboxCounts } from '../../src/mail/outbox.ts';
import type { MailTransport } from '../../src/mail/transport.ts';
import { createOutboxWorker } from '../../src/mail/worker.ts';
import { address, tokenOf } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime, testDb } from '../support/runtime.ts';

const PASSWORD = 'lantern orchard pebble';
const PARALLEL = 20;

let rt: TestRuntime;
beforeAll(async () => {
  rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
});
afterAll(async () => {
  await rt.close();
});

async function signUp(email: string) {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
  const { verification } = await rt.mailTo(email);
  if (!verification.code) throw new Error('no code in the message');
  return { token: tokenOf(verification.url), code: verification.code };
}

function verify(payload: Record<string, unknown>) {
  return rt.app.inject({ method: 'POST', url: '/api/verify', payload });
}

function answers(responses: Array<{ statusCode: number; json(): unknown }>) {
  return responses.map((r) => ({ status: r.statusCode, body: r.json() }));
}

function wrong(code: string): string {
  return code === '00000000' ? '11111111' : '00000000';
}

describe(`parallel requests on ${testDb}`, () => {
  it('the app talks to the database it was given', () => {
    expect(dialectOf(rt.db.kysely)).toBe(
      { sqlite: 'sqlite', postgres: 'postgres', mariadb: 'mysql' }[testDb],
    );
    expect(rt.db.dialect).toBe(dialectOf(rt.db.kysely));
  });

  it('spend a link once: one verified, every other already_verified, no 5xx', async () => {
    const email = address('link-race');
    const { token } = await signUp(email);
    const results = answers(
      await Promise.all(Array.from({ length: PARALLEL }, () => verify({ token }))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(PARALLEL);
    const statuses = results.map((r) => (r.body as { status: string }).status).sort();
    expect(statuses.filter((s) => s === 'verified')).toHaveLength(1);
    expect(statuses.filter((s) => s === 'already_verified')).toHaveLength(PARALLEL - 1);
  });

  it('spend a code once: one verified, every other already_verified, no 5xx', async () => {
    const email = address('code-race');
    const { code } = await signUp(email);
    const results = answers(
      await Promise.all(Array.from({ length: PARALLEL }, () => verify({ email, code }))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(PARALLEL);
    const statuses = results.map((r) => (r.body as { status: string }).status);
    expect(statuses.filter((s) => s === 'verified')).toHaveLength(1);
    expect(statuses.filter((s) => s === 'already_verified')).toHaveLength(PARALLEL - 1);
  });

  it('take no more than 5 attempts from parallel wrong codes, and the right one then fails', async () => {
    const email = address('guess-race');
    const { code } = await signUp(email);
    const results = answers(
      await Promise.all(
        Array.from({ length: PARALLEL }, () => verify({ email, code: wrong(code) })),
      ),
    );
    for (const r of results) expect(r.status).toBe(400);
    const codes = results.map((r) => (r.body as { error: { code: string } }).error.code);
    // Every wrong code is "wrong code", as for an address without a secret; the count below is
    // what stops them: no more than 5 attempts were taken, however many raced.
    expect(codes.filter((c) => c === 'code_invalid')).toHaveLength(PARALLEL);
    const row = await rt.db.kysely
      .selectFrom('verifications')
      .select('code_attempts')
      .where('target', '=', email)
      .executeTakeFirstOrThrow();
    expect(row.code_attempts).toBe(5);
    const right = await verify({ email, code });
    expect(right.statusCode).toBe(400);
    expect(right.json()).toMatchObject({ error: { code: 'too_many_attempts' } });
  });

  it('sign-ups racing the confirmation of one address: no 5xx, and a confirmed password stays', async () => {
    // The confirmation starts a little later each round, to land among the sign-ups' hashing.
    for (const delayMs of [0, 12, 24]) {
      const email = address('signup-vs-confirm');
      const { token } = await signUp(email);
      const [confirmed, ...signups] = await Promise.all([
        new Promise((resolve) => setTimeout(resolve, delayMs)).then(() => verify({ token })),
        ...Array.from({ length: 8 }, (_, i) =>
          rt.app.inject({
            method: 'POST',
            url: '/api/signup',
            payload: { email, password: `${PASSWORD} ${i}` },
          }),
        ),
      ]);
      for (const signup of signups) expect(signup.statusCode).toBe(202);
      // 400 when a sign-up replaced the link first.
      expect([200, 400]).toContain(confirmed?.statusCode);
      if (confirmed?.statusCode !== 200) continue;
      // The link confirmed the account its own sign-up made, and no later sign-up reset it.
      const user = await rt.db.kysely
        .selectFrom('users')
        .select('password_hash')
        .where('email_normalized', '=', email)
        .executeTakeFirstOrThrow();
      expect(await verifyPassword(user.password_hash, PASSWORD)).toBe(true);
    }
  });

  it('lease each outbox row to one of several workers draining at once', async () => {
    await rt.worker?.stop();
    const now = rt.clock.now();
    const prefix = `lease-${Math.random().toString(36).slice(2, 8)}`;
    const queued = 60;
    for (let i = 0; i < queued; i++) {
      await enqueueEmail(rt.db.kysely, {
        to: `${prefix}-${i}@example.com`,
        template: 'signup-existing',
        data: { loginUrl: 'http://mailproof.test/login' },
        flow: 'test',
        now,
        random: rt.ctx.random,
        messageIdDomain: 'mailproof.test',
      });
    }
    const sent: string[] = [];
    const transport: MailTransport = {
      name: 'recorder',
      async send(email) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        sent.push(email.to);
      },
      async close() {},
    };
    const workers = Array.from({ length: 4 }, () =>
      createOutboxWorker({
        db: rt.db,
        transport,
        clock: rt.clock,
        random: rt.ctx.random,
        log: rt.ctx.log,
        branding: rt.ctx.branding,
        from: rt.config.mail.defaultSender,
        maxAttempts: rt.config.mail.maxAttempts,
        batchSize: 7,
      }),
    );
    let handled = 0;
    for (let pass = 0; pass < 50 && handled < queued; pass++) {
      const counts = await Promise.all(workers.map((w) => w.drainOnce()));
      handled += counts.reduce((a, b) => a + b, 0);
    }
    const ours = sent.filter((to) => to.startsWith(prefix));
    expect(ours).toHaveLength(queued);
    expect(new Set(ours).size).toBe(queued);
    const rows = await rt.db.kysely
      .selectFrom('outbox')
      .select(['status', 'attempts'])
      .where('to_address', 'like', `${prefix}-%`)
      .execute();
    expect(rows.every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
    rt.worker?.start();
  });
});

describe(`values as written on ${testDb}`, () => {
  it('gives millisecond times and counts back as numbers', async () => {
    const email = address('types');
    await signUp(email);
    const user = await rt.db.kysely
      .selectFrom('users')
      .selectAll()
      .where('email_normalized', '=', email)
      .executeTakeFirstOrThrow();
    expect(typeof user.created_at).toBe('number');
    expect(user.created_at).toBe(rt.clock.now());
    const counts = await outboxCounts(rt.db.kysely);
    expect(typeof counts.sent).toBe('number');
    // A time far past 2^32 ms, and the largest the schema's BIGINT columns are ever asked for.
    const far = Date.parse('2999-12-31T23:59:59.999Z');
    await rt.db.kysely
      .updateTable('users')
      .set({ updated_at: far })
      .where('id', '=', user.id)
      .execute();
    const again = await rt.db.kysely
      .selectFrom('users')
      .select('updated_at')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(again.updated_at).toBe(far);
  });

  it('keeps text outside the Basic Multilingual Plane intact (utf8mb4)', async () => {
    const id = newId(rt.ctx.random);
    const name = 'Zoë 😀 𝒜 李';
    const message = `Hello 👋🏽 — ünïcödé, 𝄞 and \u{1F9D1}\u200D\u{1F4BB}`;
    await rt.db.kysely
      .insertInto('contact_messages')
      .values({
        id,
        name,
        email: 'emoji@example.com',
        email_normalized: 'emoji@example.com',
        message,
        status: 'pending',
        created_at: rt.clock.now(),
        accepted_at: null,
      })
      .execute();
    const row = await rt.db.kysely
      .selectFrom('contact_messages')
      .select(['name', 'message'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ name, message });
  });

  it('compares unique keys byte for byte: case and accents make different keys', async () => {
    const now = rt.clock.now();
    const base = `bytes-${Math.random().toString(36).slice(2, 8)}`;
    const variants = [
      `${base}@example.com`,
      `${base.toUpperCase()}@example.com`,
      `${base}é@example.com`,
      `${base}e@example.com`,
    ];
    for (const email of variants) {
      await rt.db.kysely
        .insertInto('users')
        .values({
          id: newId(rt.ctx.random),
          email,
          email_normalized: email,
          password_hash: 'x',
          email_verified_at: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
    }
    const found = await rt.db.kysely
      .selectFrom('users')
      .select('email_normalized')
      .where('email_normalized', '=', `${base}@example.com`)
      .execute();
    expect(found).toEqual([{ email_normalized: `${base}@example.com` }]);
  });
});
