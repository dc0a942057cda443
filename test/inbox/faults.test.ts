// Fault injection: the catcher answers chosen messages with an SMTP error or drops the
// connection, and the outbox's retries can be watched working from the inbox.
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpCatcher } from '../../src/inbox/smtp.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a passphrase long enough for tests';

async function outboxRow(rt: TestRuntime, to: string) {
  return rt.db.kysely
    .selectFrom('outbox')
    .select(['status', 'attempts', 'last_error'])
    .where('to_address', '=', to)
    .executeTakeFirstOrThrow();
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('fault injection', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  it('manages faults through the API and refuses bad ones', async () => {
    const bad = await rt.app.inject({
      method: 'POST',
      url: '/_inbox/api/faults',
      payload: { action: 200 },
    });
    expect(bad.statusCode).toBe(400);
    const added = await rt.app.inject({
      method: 'POST',
      url: '/_inbox/api/faults',
      payload: { action: 421, count: 2, to: 'Nobody@' },
    });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ action: 421, remaining: 2, to: 'nobody@' });
    expect((await rt.app.inject({ url: '/_inbox/api/faults' })).json().faults).toHaveLength(1);
    expect((await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/faults' })).json()).toEqual({
      cleared: 1,
    });
    expect((await rt.app.inject({ url: '/_inbox/api/faults' })).json().faults).toEqual([]);
  });

  it('a 451 makes the outbox retry; the message arrives once, its provenance shows both attempts', async () => {
    const email = 'retry-451@example.com';
    await rt.app.inject({
      method: 'POST',
      url: '/_inbox/api/faults',
      payload: { action: 451, to: email },
    });
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email, password: PASSWORD },
    });
    expect(res.statusCode).toBe(202);
    const failed = await until(
      () => outboxRow(rt, email),
      (r) => r.attempts >= 1 && r.last_error !== null,
    );
    expect(failed).toMatchObject({ status: 'pending', attempts: 1 });
    expect(failed.last_error).toMatch(/451/);
    rt.clock.advance(60 * 60 * 1000); // past any backoff
    rt.worker?.wake();
    const message = await rt.mailTo(email);
    expect(message.provenance).toMatchObject({
      template: 'verify-email',
      flow: 'signup',
      attempt: 2,
    });
    expect(message.provenance?.previousError).toMatch(/SMTP 451/);
    expect(
      (await rt.app.inject({ url: `/_inbox/api/messages?to=${email}` })).json().messages,
    ).toHaveLength(1);
    // The row is marked sent just after the inbox has the message.
    const sent = await until(
      () => outboxRow(rt, email),
      (r) => r.status === 'sent',
    );
    expect(sent).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('a 550 makes the message a dead letter at once, and nothing arrives', async () => {
    const email = 'refused-550@example.com';
    await rt.app.inject({
      method: 'POST',
      url: '/_inbox/api/faults',
      payload: { action: 550, to: email },
    });
    await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email, password: PASSWORD },
    });
    const row = await until(
      () => outboxRow(rt, email),
      (r) => r.status === 'dead',
    );
    expect(row).toMatchObject({ status: 'dead', attempts: 1 });
    expect(row.last_error).toMatch(/550/);
    expect(
      (await rt.app.inject({ url: `/_inbox/api/messages?to=${email}` })).json().messages,
    ).toEqual([]);
  });

  it('answers SMTP clients with the injected code, or drops their connection', async () => {
    const faults = rt.faults;
    const inbox = rt.inbox;
    if (!faults || !inbox) throw new Error('inbox disabled');
    const catcher = await startSmtpCatcher(inbox, { host: '127.0.0.1', port: 0, faults });
    const client = nodemailer.createTransport({
      host: '127.0.0.1',
      port: catcher.port,
      secure: false,
      ignoreTLS: true,
    });
    const send = (to: string) =>
      client.sendMail({ from: 'app@example.com', to, subject: 'hi', text: 'hello' });
    try {
      faults.add({ action: 421, count: 1, to: 'smtp-a@' });
      await expect(send('smtp-a@example.com')).rejects.toMatchObject({ responseCode: 421 });
      await expect(send('smtp-a@example.com')).resolves.toMatchObject({
        accepted: ['smtp-a@example.com'],
      });
      faults.add({ action: 'drop', count: 1, to: 'smtp-b@' });
      await expect(send('smtp-b@example.com')).rejects.toThrow();
      expect(inbox.list({ to: 'smtp-b@example.com' })).toEqual([]);
      expect(inbox.list({ to: 'smtp-a@example.com' })).toHaveLength(1);
    } finally {
      client.close();
      await catcher.close();
    }
  });
});
