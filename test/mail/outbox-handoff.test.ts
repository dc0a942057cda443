// The in-process hand-over (SQLite): a sign-up writes its message already leased to this
// process's running worker, which sends it without claiming it; rows handed over to a worker that
// has begun to stop are given back at once. SQLite only (the synchronous path), so it runs once.
import { afterEach, describe, expect, it } from 'vitest';
import { enqueueEmail, enqueueEmailSync } from '../../src/mail/outbox.ts';
import type { MailTransport, OutgoingEmail } from '../../src/mail/transport.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

let runtime: TestRuntime | null = null;
afterEach(async () => {
  await runtime?.close();
  runtime = null;
});

/** A transport that holds every send until `release()`, and records what it was given. */
function heldTransport() {
  const sent: OutgoingEmail[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started!: () => void;
  const firstSend = new Promise<void>((resolve) => {
    started = resolve;
  });
  const transport: MailTransport = {
    name: 'held',
    async send(email) {
      started();
      await gate;
      sent.push(email);
    },
    async close() {},
  };
  return { transport, sent, release: () => release(), firstSend };
}

/** Counts the calls of `mailQueued` (the announcement of unleased rows) from now on. */
function countWakeUps(rt: TestRuntime): () => number {
  let calls = 0;
  const mailQueued = rt.ctx.mailQueued;
  rt.ctx.mailQueued = () => {
    calls++;
    mailQueued();
  };
  return () => calls;
}

async function signUp(rt: TestRuntime, email: string): Promise<number> {
  const response = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: 'a long enough passphrase 42' },
  });
  return response.statusCode;
}

async function outboxRows(rt: TestRuntime) {
  return rt.db.kysely
    .selectFrom('outbox')
    .select(['id', 'status', 'attempts', 'locked_by', 'locked_until', 'to_address'])
    .execute();
}

describe('outbox hand-over to the in-process worker (SQLite)', () => {
  it('writes the sign-up message leased to the running worker, which sends it once', async () => {
    const held = heldTransport();
    runtime = await createTestRuntime({ transport: held.transport });
    const worker = runtime.worker;
    if (!worker || !runtime.db.sqlite) throw new Error('a SQLite runtime with its worker');
    const wakeUps = countWakeUps(runtime);

    expect(await signUp(runtime, 'handoff@example.com')).toBe(202);

    // The message is being sent: it was written with this worker's lease and attempt 1.
    await held.firstSend;
    const [leased] = await outboxRows(runtime);
    expect(leased).toMatchObject({
      status: 'pending',
      attempts: 1,
      locked_by: worker.id,
      to_address: 'handoff@example.com',
    });
    expect(leased?.locked_until).toBeGreaterThan(runtime.clock.now());

    held.release();
    await expect
      .poll(async () => (await outboxRows(runtime as TestRuntime))[0]?.status)
      .toBe('sent');
    const [sent] = await outboxRows(runtime);
    expect(sent).toMatchObject({ attempts: 1, locked_by: null, locked_until: null });
    expect(held.sent.map((email) => email.to)).toEqual(['handoff@example.com']);
    // Handed over, not announced for a claim.
    expect(wakeUps()).toBe(0);
  });

  it('still claims rows written without a hand-over while hand-overs keep waking the worker', async () => {
    runtime = await createTestRuntime();
    const rt = runtime;
    let i = 0;
    const nextSignUp = async () => expect(await signUp(rt, `steady-${i++}@example.com`)).toBe(202);
    // Hand-overs flow first, so the worker is being woken by them when the row appears.
    for (let k = 0; k < 3; k++) await nextSignUp();
    // A row nobody announces (no mailQueued): only the worker's periodic claim finds it.
    const id = await enqueueEmail(rt.db.kysely, {
      to: 'unannounced@example.com',
      template: 'signup-existing',
      data: { loginUrl: 'http://mailproof.test/login' },
      flow: 'test',
      now: rt.clock.now(),
      random: rt.ctx.random,
      messageIdDomain: 'mailproof.test',
    });
    const status = async () =>
      (
        await rt.db.kysely
          .selectFrom('outbox')
          .select('status')
          .where('id', '=', id)
          .executeTakeFirst()
      )?.status;
    // Sign-ups one after another, each handed over: the worker is woken far more often than its
    // poll interval (50 ms in tests), and must claim all the same.
    while ((await status()) !== 'sent' && i < 40) await nextSignUp();
    expect(await status()).toBe('sent');
    expect(i).toBeLessThan(40);
  });

  it('offers no lease while the worker is not running', async () => {
    runtime = await createTestRuntime();
    const worker = runtime.worker;
    if (!worker) throw new Error('a runtime with its worker');
    expect(worker.offer()).not.toBeNull();
    await worker.stop();
    expect(worker.offer()).toBeNull();
    const wakeUps = countWakeUps(runtime);

    // Without a lease the sign-up's message is written unleased, for any worker to claim.
    expect(await signUp(runtime, 'nolease@example.com')).toBe(202);
    expect(await outboxRows(runtime)).toEqual([
      expect.objectContaining({ status: 'pending', attempts: 0, locked_by: null }),
    ]);
    expect(wakeUps()).toBe(1);
  });

  it('gives back rows handed over after the worker began to stop, for another worker', async () => {
    runtime = await createTestRuntime();
    const worker = runtime.worker;
    const sqlite = runtime.db.sqlite;
    if (!worker || !sqlite) throw new Error('a SQLite runtime with its worker');
    const handoff = worker.offer();
    if (!handoff) throw new Error('a running worker offers a lease');
    const rt = runtime;
    const row = await sqlite.transaction((run) =>
      enqueueEmailSync(
        run,
        {
          to: 'late@example.com',
          template: 'signup-existing',
          data: { loginUrl: 'http://mailproof.test/login' },
          flow: 'signup',
          now: rt.clock.now(),
          random: rt.ctx.random,
          messageIdDomain: 'mailproof.test',
        },
        handoff,
      ),
    );
    expect(await outboxRows(runtime)).toEqual([
      expect.objectContaining({ attempts: 1, locked_by: worker.id }),
    ]);

    await worker.stop();
    handoff.accept([row]);
    await expect
      .poll(async () => (await outboxRows(rt))[0])
      .toMatchObject({ status: 'pending', attempts: 0, locked_by: null, locked_until: null });

    // Unleased again, so the next pass of any worker sends it.
    expect(await worker.drainOnce()).toBe(1);
    expect((await outboxRows(runtime))[0]?.status).toBe('sent');
  });
});
