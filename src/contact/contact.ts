// The verified contact form: a message is stored as pending and counts only once its sender
// proves the address. Acceptance, delivery to the owner and the webhook are one transaction.
import type { Kysely, Transaction } from 'kysely';
import { isValidEmail, normaliseEmail } from '../accounts/email.ts';
import { newId } from '../clock.ts';
import { type AppContext, messageIdDomain } from '../context.ts';
import { lockForUpdate } from '../db/dialect.ts';
import type { ContactMessage, Database } from '../db/schema.ts';
import { enqueueEmail } from '../mail/outbox.ts';
import {
  checkCode,
  codeFailureAnswer,
  consumeToken,
  failedOutright,
  findByToken,
  issueVerification,
  looksLikeToken,
} from '../tokens/tokens.ts';

export const CONTACT_LIMITS = { name: 100, email: 254, message: 5000 } as const;

export interface ContactInput {
  name: string;
  email: string;
  message: string;
  /** The honeypot: a field people never see and bots fill in. */
  website?: string;
}

export type ContactField = 'name' | 'email' | 'message';

export type SubmitResult =
  | { status: 'pending' }
  | { status: 'invalid'; errors: Partial<Record<ContactField, string>> }
  | { status: 'disabled' };

export type ContactConfirmResult =
  | { status: 'accepted'; messageId: string }
  | { status: 'already_accepted'; messageId: string }
  | { status: 'expired' }
  | { status: 'invalid' };

export type ContactCodeResult =
  | ContactConfirmResult
  | { status: 'code_invalid' }
  | { status: 'too_many_attempts' };

export interface AcceptedContactEvent {
  id: string;
  name: string;
  email: string;
  message: string;
  acceptedAt: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * Browsers submit a textarea's line breaks as CRLF: one "\n" each, so the length matches the
 * form's maxlength and no bare CR reaches the delivered email's MIME body.
 */
function normaliseLineBreaks(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

export function validateContact(input: ContactInput): Partial<Record<ContactField, string>> {
  const errors: Partial<Record<ContactField, string>> = {};
  const name = input.name.trim();
  if (!name) errors.name = 'Enter your name.';
  else if (name.length > CONTACT_LIMITS.name)
    errors.name = `Use at most ${CONTACT_LIMITS.name} characters.`;
  // A name is one line: a line break in it can only be an attempt to forge mail headers.
  else if (/[\r\n\t]/.test(input.name) || CONTROL_CHARACTERS.test(name))
    errors.name = 'Enter your name on one line, without special characters.';
  if (!isValidEmail(input.email))
    errors.email = 'Enter a valid email address, such as name@example.com.';
  const message = normaliseLineBreaks(input.message).trim();
  if (!message) errors.message = 'Enter your message.';
  else if (message.length > CONTACT_LIMITS.message)
    errors.message = `Use at most ${CONTACT_LIMITS.message} characters.`;
  else if (CONTROL_CHARACTERS.test(message))
    errors.message = 'Remove the special (control) characters from your message.';
  return errors;
}

export async function submitContact(
  ctx: AppContext,
  typed: ContactInput,
  requestId: string | null,
): Promise<SubmitResult> {
  if (!ctx.config.contact.to) return { status: 'disabled' };
  const input = { ...typed, message: normaliseLineBreaks(typed.message) };
  const errors = validateContact(input);
  if (Object.keys(errors).length > 0) return { status: 'invalid', errors };
  // A bot that filled the hidden field gets the same answer, and nothing is stored or sent.
  if (input.website?.trim()) return { status: 'pending' };

  const now = ctx.clock.now();
  const id = newId(ctx.random);
  const email = input.email.trim();
  const name = input.name.trim();
  const message = input.message.trim();
  await ctx.db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('contact_messages')
      .values({
        id,
        name,
        email,
        email_normalized: normaliseEmail(email),
        message,
        status: 'pending',
        created_at: now,
        accepted_at: null,
      })
      .execute();
    await queueContactVerification(ctx, trx, { id, name, email, message }, requestId);
  });
  ctx.mailQueued();
  ctx.events.emit('contact.submitted', { id });
  return { status: 'pending' };
}

async function queueContactVerification(
  ctx: AppContext,
  trx: Transaction<Database>,
  contact: Pick<ContactMessage, 'id' | 'name' | 'email' | 'message'>,
  requestId: string | null,
): Promise<void> {
  const { config } = ctx;
  const now = ctx.clock.now();
  const { token, code } = await issueVerification(trx, {
    purpose: 'contact',
    target: contact.id,
    userId: null,
    now,
    linkTtlSeconds: config.contact.linkTtlSeconds,
    codeTtlSeconds: config.ttl.codeSeconds,
    secretKey: config.secretKey,
    random: ctx.random,
  });
  await enqueueEmail(trx, {
    to: contact.email,
    template: 'contact-verify',
    data: {
      url: `${config.baseUrl}/contact/confirm/${token}`,
      code,
      linkMinutes: Math.round(config.contact.linkTtlSeconds / 60),
      name: contact.name,
      excerpt: excerpt(contact.message),
    },
    flow: 'contact',
    requestId,
    now,
    random: ctx.random,
    messageIdDomain: messageIdDomain(config),
  });
  ctx.events.emit('verification.queued', { purpose: 'contact' });
}

function excerpt(message: string): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 299)}…` : flat;
}

export type ContactLookup =
  | { status: 'valid' | 'expired' | 'used'; contact: ContactMessage }
  | { status: 'invalid' };

/** Reads the message behind a link without changing anything (for the confirm page). */
export async function findContactByToken(ctx: AppContext, token: string): Promise<ContactLookup> {
  const found = await findByToken(ctx.db.kysely, 'contact', token, ctx.clock.now());
  if (found.status === 'invalid') return found;
  const contact = await ctx.db.kysely
    .selectFrom('contact_messages')
    .selectAll()
    .where('id', '=', found.verification.target)
    .executeTakeFirst();
  if (!contact) return { status: 'invalid' };
  const status = contact.status === 'accepted' ? 'used' : found.status;
  return { status, contact };
}

/** Accepts the message: marks it, queues its delivery to the owner and the webhook, once. */
async function accept(
  ctx: AppContext,
  trx: Transaction<Database>,
  contactId: string,
  now: number,
): Promise<ContactConfirmResult> {
  const updated = await trx
    .updateTable('contact_messages')
    .set({ status: 'accepted', accepted_at: now })
    .where('id', '=', contactId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1)
    return { status: 'already_accepted', messageId: contactId };
  const contact = await trx
    .selectFrom('contact_messages')
    .selectAll()
    .where('id', '=', contactId)
    .executeTakeFirstOrThrow();
  const { config } = ctx;
  const receivedAt = new Date(contact.created_at).toISOString().replace('T', ' ').slice(0, 16);
  if (config.contact.to) {
    await enqueueEmail(trx, {
      to: config.contact.to,
      template: 'contact-delivery',
      data: {
        name: contact.name,
        email: contact.email,
        message: contact.message,
        receivedAt: `${receivedAt} UTC`,
      },
      flow: 'contact',
      now,
      random: ctx.random,
      messageIdDomain: messageIdDomain(config),
    });
  }
  if (config.contact.webhookUrl) {
    const id = newId(ctx.random);
    const event = {
      id,
      type: 'contact.accepted',
      createdAt: new Date(now).toISOString(),
      data: toEvent(contact),
    };
    await trx
      .insertInto('outbox')
      .values({
        id,
        kind: 'webhook',
        message_id: id,
        to_address: config.contact.webhookUrl,
        template: 'contact.accepted',
        payload: JSON.stringify(event),
        flow: 'contact',
        request_id: null,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        locked_until: null,
        locked_by: null,
        last_error: null,
        created_at: now,
        sent_at: null,
      })
      .execute();
  }
  return { status: 'accepted', messageId: contactId };
}

function toEvent(contact: ContactMessage): AcceptedContactEvent {
  return {
    id: contact.id,
    name: contact.name,
    email: contact.email,
    message: contact.message,
    acceptedAt: new Date(contact.accepted_at ?? contact.created_at).toISOString(),
  };
}

async function afterAccept(ctx: AppContext, result: ContactConfirmResult | ContactCodeResult) {
  if (result.status !== 'accepted') return;
  ctx.mailQueued();
  const contact = await ctx.db.kysely
    .selectFrom('contact_messages')
    .selectAll()
    .where('id', '=', result.messageId)
    .executeTakeFirst();
  if (!contact) return;
  try {
    ctx.events.emit('contact.accepted', toEvent(contact));
  } catch (error) {
    // A failing hook must not turn an accepted message into an error for its sender.
    ctx.log.error({ err: error }, 'contact.accepted hook failed');
  }
}

/** Only the POST of the confirm page (or the API) calls this; a GET never does. */
export async function confirmContactToken(
  ctx: AppContext,
  token: string,
): Promise<ContactConfirmResult> {
  if (!looksLikeToken(token)) return { status: 'invalid' };
  const now = ctx.clock.now();
  const result = await ctx.db.kysely.transaction().execute(async (trx) => {
    const spent = await consumeToken(trx, 'contact', token, now);
    if (spent) return accept(ctx, trx, spent.target, now);
    const found = await findByToken(trx, 'contact', token, now);
    if (found.status === 'invalid') return { status: 'invalid' } as const;
    const contact = await trx
      .selectFrom('contact_messages')
      .select(['id', 'status'])
      .where('id', '=', found.verification.target)
      .executeTakeFirst();
    if (!contact) return { status: 'invalid' } as const;
    if (contact.status === 'accepted')
      return { status: 'already_accepted', messageId: contact.id } as const;
    return found.status === 'expired'
      ? ({ status: 'expired' } as const)
      : ({ status: 'invalid' } as const);
  });
  await afterAccept(ctx, result);
  return result;
}

/** Confirms the sender's newest pending message by the code from its verification email. */
export async function confirmContactCode(
  ctx: AppContext,
  email: string,
  code: string,
): Promise<ContactCodeResult> {
  if (!isValidEmail(email)) return { status: 'code_invalid' };
  const now = ctx.clock.now();
  const latest = await ctx.db.kysely
    .selectFrom('contact_messages')
    .select(['id'])
    .where('email_normalized', '=', normaliseEmail(email))
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!latest) return { status: 'code_invalid' };
  const result = await ctx.db.kysely
    .transaction()
    .execute(async (trx): Promise<ContactCodeResult> => {
      const checked = await checkCode(trx, {
        purpose: 'contact',
        target: latest.id,
        code,
        now,
        secretKey: ctx.config.secretKey,
        maxAttempts: ctx.config.codeMaxAttempts,
      });
      if (failedOutright(checked)) return codeFailureAnswer(checked);
      switch (checked.status) {
        case 'used':
          return { status: 'already_accepted', messageId: latest.id };
        case 'valid': {
          const spent = await consumeTokenById(trx, checked.verification.id, now);
          return spent
            ? accept(ctx, trx, latest.id, now)
            : { status: 'already_accepted', messageId: latest.id };
        }
      }
    });
  await afterAccept(ctx, result);
  return result;
}

async function consumeTokenById(
  trx: Transaction<Database>,
  id: string,
  now: number,
): Promise<boolean> {
  const result = await trx
    .updateTable('verifications')
    .set({ used_at: now })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * From an expired link: a fresh link and code for the same pending message, sent to the address
 * it was written from. Returns that address for rate limiting, or null when nothing was sent.
 */
export async function resendContactForToken(
  ctx: AppContext,
  token: string,
  requestId: string | null,
): Promise<string | null> {
  const found = await findContactByToken(ctx, token);
  if (found.status === 'invalid' || found.contact.status !== 'pending') return null;
  const { contact } = found;
  await ctx.db.kysely
    .transaction()
    .execute((trx) => queueContactVerification(ctx, trx, contact, requestId));
  ctx.mailQueued();
  return contact.email_normalized;
}

/** Deletes unconfirmed messages older than the retention period (and their secrets). */
export async function purgePendingContacts(ctx: AppContext): Promise<number> {
  const cutoff = ctx.clock.now() - ctx.config.contact.pendingRetentionSeconds * 1000;
  return ctx.db.kysely.transaction().execute(async (trx) => {
    const stale = await trx
      .selectFrom('contact_messages')
      .select('id')
      .where('status', '=', 'pending')
      .where('created_at', '<', cutoff)
      .limit(1000)
      .execute();
    if (stale.length === 0) return 0;
    const ids = stale.map((r) => r.id);
    // Locks in the order a confirmation takes them, the secret and then the message, so a purge
    // and a late confirmation of one message wait for each other instead of deadlocking.
    await lockForUpdate(
      trx,
      trx
        .selectFrom('verifications')
        .select('id')
        .where('purpose', '=', 'contact')
        .where('target', 'in', ids),
    ).execute();
    // Re-checked here: a message accepted since the SELECT stays, and so does its secret.
    const deleted = await trx
      .deleteFrom('contact_messages')
      .where('id', 'in', ids)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    await trx
      .deleteFrom('verifications')
      .where('purpose', '=', 'contact')
      .where('target', 'in', ids)
      .where(({ exists, not, selectFrom }) =>
        not(
          exists(
            selectFrom('contact_messages')
              .select('contact_messages.id')
              .whereRef('contact_messages.id', '=', 'verifications.target'),
          ),
        ),
      )
      .execute();
    return Number(deleted.numDeletedRows);
  });
}

export function listAcceptedContacts(db: Kysely<Database>, limit = 100): Promise<ContactMessage[]> {
  return db
    .selectFrom('contact_messages')
    .selectAll()
    .where('status', '=', 'accepted')
    .orderBy('accepted_at', 'desc')
    .limit(limit)
    .execute();
}
