import { expect } from 'vitest';
import type { MessageDetail } from '../../src/inbox/store.ts';
import type { TestRuntime } from './runtime.ts';

export {
  address,
  BASE_URL,
  cookieHeader,
  csrfOf,
  getPage,
  type Jar,
  pathOf,
  postForm,
  remember,
  tokenOf,
} from './forms.ts';

/** CONTACT_TO in the test environment: owner@<host of BASE_URL>. */
export const OWNER = 'owner@mailproof.test';
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

export interface ContactFields {
  name: string;
  email: string;
  message: string;
  website?: string;
}

export function apiContact(rt: TestRuntime, payload: Partial<ContactFields> | object) {
  return rt.app.inject({ method: 'POST', url: '/api/contact', payload });
}

export function apiConfirm(rt: TestRuntime, payload: Record<string, unknown>) {
  return rt.app.inject({ method: 'POST', url: '/api/contact/confirm', payload });
}

/** Submits through the API (expecting 202) and returns the verification message. */
export async function submit(rt: TestRuntime, fields: ContactFields): Promise<MessageDetail> {
  const since = latestId(rt, fields.email);
  const res = await apiContact(rt, fields);
  expect(res.statusCode, res.body).toBe(202);
  expect(res.json()).toEqual({ status: 'pending' });
  return rt.mailTo(fields.email, { since });
}

export function latestId(rt: TestRuntime, email: string): number {
  return rt.inbox?.latestFor(email)?.id ?? 0;
}

export async function contactsOf(rt: TestRuntime, email: string) {
  return rt.db.kysely
    .selectFrom('contact_messages')
    .selectAll()
    .where('email_normalized', '=', email.trim().toLowerCase())
    .orderBy('created_at')
    .execute();
}

export async function contactOf(rt: TestRuntime, email: string) {
  const rows = await contactsOf(rt, email);
  expect(rows, `one contact message from ${email}`).toHaveLength(1);
  const [row] = rows;
  if (!row) throw new Error('unreachable');
  return row;
}

export async function verificationOf(rt: TestRuntime, contactId: string) {
  return rt.db.kysely
    .selectFrom('verifications')
    .selectAll()
    .where('purpose', '=', 'contact')
    .where('target', '=', contactId)
    .executeTakeFirst();
}

export async function snapshot(rt: TestRuntime) {
  const db = rt.db.kysely;
  return {
    contact_messages: await db.selectFrom('contact_messages').selectAll().orderBy('id').execute(),
    verifications: await db.selectFrom('verifications').selectAll().orderBy('id').execute(),
    outbox: await db.selectFrom('outbox').selectAll().orderBy('id').execute(),
    users: await db.selectFrom('users').selectAll().orderBy('id').execute(),
    sessions: await db.selectFrom('sessions').selectAll().orderBy('id_hash').execute(),
  };
}

/** Waits until the worker has handled everything due, so the tables hold still. */
export async function outboxIdle(rt: TestRuntime) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pending = await rt.db.kysely
      .selectFrom('outbox')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', rt.clock.now())
      .execute();
    if (pending.length === 0) return;
    if (Date.now() > deadline) throw new Error('the outbox did not drain');
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The top-level header block of a raw MIME message, unfolded (RFC 5322 §2.2.3). */
export function headerLines(raw: Buffer): Array<{ name: string; value: string }> {
  const text = raw.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  expect(end, 'a header block ended by an empty line').toBeGreaterThan(0);
  return text
    .slice(0, end)
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .map((line) => {
      const colon = line.indexOf(':');
      expect(colon, `header line "${line}"`).toBeGreaterThan(0);
      return { name: line.slice(0, colon).toLowerCase(), value: line.slice(colon + 1).trim() };
    });
}

export function headersNamed(raw: Buffer, name: string): string[] {
  return headerLines(raw)
    .filter((h) => h.name === name.toLowerCase())
    .map((h) => h.value);
}

/** Every message delivered to the owner whose Reply-To is `sender`. */
export function deliveriesFrom(rt: TestRuntime, sender: string): MessageDetail[] {
  const inbox = rt.inbox;
  if (!inbox) throw new Error('the inbox is disabled');
  return inbox
    .list({ to: OWNER, limit: 500 })
    .map((m) => inbox.get(m.id))
    .filter((m): m is MessageDetail => m !== null)
    .filter((m) =>
      m.headers.some((h) => {
        // `Name <address>`, or the bare address when the name could not go into a header.
        const value = h.value.toLowerCase();
        const address = sender.toLowerCase();
        return h.name === 'reply-to' && (value === address || value.includes(`<${address}>`));
      }),
    );
}

export async function countOutbox(
  rt: TestRuntime,
  where: { to?: string; template?: string; kind?: 'email' | 'webhook' },
) {
  let query = rt.db.kysely.selectFrom('outbox').select('id');
  if (where.to) query = query.where('to_address', '=', where.to);
  if (where.template) query = query.where('template', '=', where.template);
  if (where.kind) query = query.where('kind', '=', where.kind);
  return (await query.execute()).length;
}
