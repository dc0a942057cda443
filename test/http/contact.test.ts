// §3 The verified contact form: pending until the sender confirms (GET shows, POST accepts),
// delivered once to CONTACT_TO with Reply-To, expiring links with a resend, purge of unconfirmed
// messages, honeypot, validation, header injection and escaping, rate limits, the admin page and
// the in-process hook. The signed webhook is in contact-webhook.test.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type AcceptedContactEvent,
  CONTACT_LIMITS,
  purgePendingContacts,
} from '../../src/contact/contact.ts';
import { oneLine } from '../../src/mail/templates/contact-delivery.tsx';
import {
  address,
  apiConfirm,
  apiContact,
  BASE_URL,
  contactOf,
  contactsOf,
  countOutbox,
  csrfOf,
  deliveriesFrom,
  getPage,
  HOUR,
  headersNamed,
  type Jar,
  latestId,
  MINUTE,
  OWNER,
  outboxIdle,
  pathOf,
  postForm,
  sleep,
  snapshot,
  submit,
  tokenOf,
  verificationOf,
} from '../support/contact.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const ADMIN_TOKEN = 'owner-admin-token-for-tests-0123';
const SUBJECT_PREFIX = '[Mailproof] Contact form: message from ';
/** `<script>alert("pwned")</script>` as escaped text (`>` may or may not be escaped). */
const ESCAPED_PWNED = /&lt;script(&gt;|>)alert\(&quot;pwned&quot;\)&lt;\/script(&gt;|>)/;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function wrongCode(code: string | null): string {
  return code === '00000000' ? '11111111' : '00000000';
}

function fields(label: string, extra: Partial<{ name: string; message: string }> = {}) {
  const email = address(label);
  return {
    name: extra.name ?? `Ada ${label}`,
    email,
    message: extra.message ?? `Hello from ${label}.\nSecond line.`,
  };
}

/** Fills and posts the /contact form as a browser would, with the page's CSRF token. */
async function submitPage(rt: TestRuntime, values: Record<string, string>, jar: Jar = {}) {
  const page = await getPage(rt, '/contact', jar);
  expect(page.statusCode).toBe(200);
  return postForm(rt, '/contact', { _csrf: csrfOf(page.body), website: '', ...values }, jar);
}

/** The owner's copy of the message from `sender`, once the worker has delivered it. */
async function deliveryFrom(rt: TestRuntime, sender: string) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = deliveriesFrom(rt, sender);
    if (found.length > 0) return found;
    if (Date.now() > deadline) throw new Error(`no delivery from ${sender} reached ${OWNER}`);
    await sleep(20);
  }
}

describe('the contact form', () => {
  let rt: TestRuntime;
  const events: AcceptedContactEvent[] = [];
  const onAccepted = (event: AcceptedContactEvent) => events.push(event);

  beforeAll(async () => {
    rt = await createTestRuntime({ env: { ADMIN_TOKEN } });
    rt.ctx.events.on('contact.accepted', onAccepted);
  });
  afterAll(async () => {
    rt.ctx.events.off('contact.accepted', onAccepted);
    await rt.close();
  });
  beforeEach(() => {
    rt.limits.reset();
  });

  describe('submitting', () => {
    it('stores a pending message and mails the sender a link and a code; nothing reaches CONTACT_TO', async () => {
      const input = fields('pending', { name: '  Grace Hopper ' });
      const ownerRowsBefore = await countOutbox(rt, { to: OWNER });
      const mail = await submit(rt, { ...input, email: ` ${input.email} ` });

      const row = await contactOf(rt, input.email);
      expect(row).toMatchObject({
        name: 'Grace Hopper',
        email: input.email,
        email_normalized: input.email,
        message: input.message,
        status: 'pending',
        accepted_at: null,
      });
      expect(Number(row.created_at)).toBe(rt.clock.now());

      const verification = await verificationOf(rt, row.id);
      expect(verification).toMatchObject({ purpose: 'contact', target: row.id, used_at: null });
      expect(Number(verification?.expires_at)).toBe(rt.clock.now() + 15 * MINUTE);

      const queued = await rt.db.kysely
        .selectFrom('outbox')
        .selectAll()
        .where('to_address', '=', input.email)
        .execute();
      expect(queued).toHaveLength(1);
      expect(queued[0]).toMatchObject({
        kind: 'email',
        template: 'contact-verify',
        flow: 'contact',
      });

      expect(mail.subject).toBe('Confirm your message to Mailproof');
      expect(mail.to).toEqual([input.email]);
      const { url, code } = mail.verification;
      expect(url).toMatch(/^http:\/\/mailproof\.test\/contact\/confirm\/[A-Za-z0-9_-]{43}$/);
      expect(code).toMatch(/^\d{8}$/);
      expect(mail.html).toContain(`href="${url}"`);
      expect(mail.text).toContain(url);
      expect(mail.text).toContain(`${code?.slice(0, 4)} ${code?.slice(4)}`);
      expect(mail.text).toMatch(/15 minutes/);
      expect(mail.text).toContain('Hello Grace Hopper');
      expect(mail.text).toContain('Hello from pending.');

      // Delivered to the sender only: the owner's address gets nothing before confirmation.
      await outboxIdle(rt);
      await sleep(100);
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(0);
      expect(await countOutbox(rt, { kind: 'webhook' })).toBe(0);
      expect((await contactOf(rt, input.email)).status).toBe('pending');
    });

    it('works on the page: /contact shows the form, its POST shows "check your inbox"', async () => {
      const input = fields('pageform');
      const jar: Jar = {};
      const form = await getPage(rt, '/contact', jar);
      expect(form.statusCode).toBe(200);
      expect(form.headers['content-type']).toMatch(/^text\/html/);
      expect(form.body).toContain('<form method="post" action="/contact" novalidate>');
      expect(form.body).toMatch(/<label for="field-name">Your name<\/label>/);
      expect(form.body).toMatch(/<label for="field-email">Your email address<\/label>/);
      expect(form.body).toMatch(/<label for="field-message">Message<\/label>/);
      expect(form.body).toMatch(/<input id="field-name" name="name"[^>]*maxLength="100"/i);
      expect(form.body).toMatch(
        /<textarea id="field-message" name="message"[^>]*maxLength="5000"/i,
      );
      // The honeypot is in the form, hidden from people and out of the tab order.
      expect(form.body).toMatch(/<div class="honeypot" aria-hidden="true">/);
      expect(form.body).toMatch(
        /<input id="field-website" name="website" type="text" tabindex="-1"/i,
      );

      const res = await postForm(
        rt,
        '/contact',
        { _csrf: csrfOf(form.body), ...input, website: '' },
        jar,
      );
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('One more step: confirm your address');
      expect(res.body).toContain(`<strong>${input.email}</strong>`);
      expect(res.body).toContain(
        `href="/contact/confirm?email=${encodeURIComponent(input.email)}"`,
      );
      expect((await contactOf(rt, input.email)).status).toBe('pending');
      const mail = await rt.mailTo(input.email);
      expect(mail.verification.url).toMatch(/\/contact\/confirm\/[A-Za-z0-9_-]{43}$/);
    });

    it('refuses a page POST without the CSRF token (403) and stores nothing', async () => {
      const input = fields('csrf');
      const res = await rt.app.inject({
        method: 'POST',
        url: '/contact',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(input).toString(),
      });
      expect(res.statusCode).toBe(403);
      expect(await contactsOf(rt, input.email)).toHaveLength(0);
    });
  });

  describe('the honeypot', () => {
    it('API: a bot that fills `website` gets the same 202, and nothing is stored or sent', async () => {
      const human = fields('human');
      const bot = fields('bot');
      const outboxBefore = await countOutbox(rt, {});
      const humanRes = await apiContact(rt, human);
      const botRes = await apiContact(rt, { ...bot, website: 'http://spam.example' });
      expect(botRes.statusCode).toBe(202);
      expect(botRes.headers['content-type']).toBe(humanRes.headers['content-type']);
      expect(botRes.body).toBe(humanRes.body);
      expect(botRes.json()).toEqual({ status: 'pending' });

      expect(await contactsOf(rt, bot.email)).toHaveLength(0);
      expect(await countOutbox(rt, { to: bot.email })).toBe(0);
      // Only the human's verification message was queued.
      expect(await countOutbox(rt, {})).toBe(outboxBefore + 1);
      await rt.mailTo(human.email);
      await outboxIdle(rt);
      expect(rt.inbox?.latestFor(bot.email)).toBeNull();
    });

    it('page: a bot that fills `website` sees the same pending page, and nothing is stored', async () => {
      const bot = fields('pagebot');
      const res = await submitPage(rt, { ...bot, website: 'buy now' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('One more step: confirm your address');
      expect(res.body).toContain(`<strong>${bot.email}</strong>`);
      expect(await contactsOf(rt, bot.email)).toHaveLength(0);
      expect(await countOutbox(rt, { to: bot.email })).toBe(0);
    });
  });

  describe('validation', () => {
    const valid = () => fields('valid');
    const cases: Array<[string, (f: ReturnType<typeof valid>) => object, string]> = [
      ['empty name', (f) => ({ ...f, name: '' }), 'name'],
      ['blank name', (f) => ({ ...f, name: '   \t ' }), 'name'],
      ['name over the limit', (f) => ({ ...f, name: 'n'.repeat(CONTACT_LIMITS.name + 1) }), 'name'],
      ['name with a control character', (f) => ({ ...f, name: 'Eve\u0007' }), 'name'],
      ['empty email', (f) => ({ ...f, email: '' }), 'email'],
      ['email without @', (f) => ({ ...f, email: 'not-an-address' }), 'email'],
      ['email with a space', (f) => ({ ...f, email: 'a b@example.com' }), 'email'],
      ['email with CRLF', (f) => ({ ...f, email: 'a@example.com\r\nBcc: x@evil.test' }), 'email'],
      ['email too long', (f) => ({ ...f, email: `${'a'.repeat(250)}@example.com` }), 'email'],
      ['empty message', (f) => ({ ...f, message: '' }), 'message'],
      ['blank message', (f) => ({ ...f, message: ' \n\n ' }), 'message'],
      [
        'message over the limit',
        (f) => ({ ...f, message: 'm'.repeat(CONTACT_LIMITS.message + 1) }),
        'message',
      ],
      ['message with a control character', (f) => ({ ...f, message: 'a\u0007b' }), 'message'],
    ];

    for (const [label, make, field] of cases) {
      it(`API: ${label} → 400 ${field}_invalid, nothing stored`, async () => {
        const base = valid();
        const body = make(base) as { email: string };
        const outboxBefore = await countOutbox(rt, {});
        const res = await apiContact(rt, body);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({
          error: {
            code: `${field}_invalid`,
            message: expect.any(String),
            field,
            fields: { [field]: expect.any(String) },
          },
        });
        expect(Object.keys(res.json().error.fields)).toEqual([field]);
        expect(await contactsOf(rt, base.email)).toHaveLength(0);
        expect(await countOutbox(rt, {})).toBe(outboxBefore);
      });
    }

    it('API: every field wrong → the first code, and all fields listed', async () => {
      const res = await apiContact(rt, { name: '', email: 'nope', message: '' });
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('name_invalid');
      expect(Object.keys(error.fields).sort()).toEqual(['email', 'message', 'name']);
    });

    it('API: the limits themselves are allowed (100-character name, 5000-character message)', async () => {
      const input = fields('limits', {
        name: 'N'.repeat(CONTACT_LIMITS.name),
        message: 'M'.repeat(CONTACT_LIMITS.message),
      });
      const res = await apiContact(rt, input);
      expect(res.statusCode).toBe(202);
      const row = await contactOf(rt, input.email);
      expect(row.name).toHaveLength(100);
      expect(row.message).toHaveLength(5000);
    });

    it('page: a message at the limit typed in a textarea (CRLF line breaks) is accepted as LF', async () => {
      // What the browser sends for 50 lines of 99 characters: 5000 characters as typed (the
      // textarea's maxlength counts a line break once), 5049 on the wire.
      const lines = Array.from({ length: 50 }, (_, i) => String(i % 10).repeat(99));
      const typed = lines.join('\n');
      expect(typed).toHaveLength(CONTACT_LIMITS.message - 1);
      const wire = `${lines.join('\r\n')}!`;
      const email = address('crlf-limit');
      const res = await submitPage(rt, { name: 'Textarea', email, message: wire });
      expect(res.statusCode).toBe(200);
      const row = await contactOf(rt, email);
      expect(row.message).toBe(`${typed}!`);
      expect(row.message).toHaveLength(CONTACT_LIMITS.message);
      expect(row.message).not.toContain('\r');
    });

    it('page: a message at the limits in a script of three-byte characters is accepted', async () => {
      // Percent-encoded, each of these characters is nine bytes on the wire: 5000 of them are
      // 45 KB, well past the 16 KiB the form bodies were once held to.
      const email = address('cjk-limit');
      const name = '名'.repeat(CONTACT_LIMITS.name);
      const message = '語'.repeat(CONTACT_LIMITS.message);
      const res = await submitPage(rt, { name, email, message });
      expect(res.statusCode).toBe(200);
      const row = await contactOf(rt, email);
      expect(row.name).toBe(name);
      expect(row.message).toBe(message);
    });

    it('page: a message over the limit in a non-Latin script keeps what was typed', async () => {
      const email = address('cyrillic-over');
      const message = 'Ж'.repeat(CONTACT_LIMITS.message + 1);
      const res = await submitPage(rt, { name: 'Борис', email, message });
      expect(res.statusCode).toBe(400);
      expect(res.body).toContain('aria-invalid="true"');
      // The form comes back with the text, for the sender to shorten.
      expect(res.body).toContain(message);
    });

    it('API: a malformed body is a 400, never a 5xx', async () => {
      const bodies: unknown[] = [
        { name: 'x', email: 'x@example.com' },
        { name: 1, email: 'x@example.com', message: 'x' },
        { name: 'x', email: 'x@example.com', message: 'x'.repeat(20_001) },
        [],
      ];
      for (const payload of bodies) {
        const res = await rt.app.inject({
          method: 'POST',
          url: '/api/contact',
          payload: payload as object,
        });
        expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
        expect(res.json()).toMatchObject({ error: { code: expect.any(String) } });
      }
    });

    it('page: errors are shown next to each field, with the typed values kept (escaped)', async () => {
      const typedName = 'x'.repeat(101);
      const typedMessage = '</textarea><script>alert("m")</script>';
      const email = 'not an "email"';
      const jar: Jar = {};
      const res = await submitPage(rt, { name: typedName, email, message: '' }, jar);
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(
        /<p class="error" id="field-name-error">Use at most 100 characters\.<\/p><input id="field-name"[^>]*aria-invalid="true" aria-describedby="field-name-error"/,
      );
      expect(res.body).toMatch(
        /<p class="error" id="field-email-error">Enter a valid email address[^<]*<\/p><input id="field-email"[^>]*value="not an &quot;email&quot;"[^>]*aria-invalid="true"/,
      );
      expect(res.body).toMatch(
        /<p class="error" id="field-message-error">Enter your message\.<\/p><textarea id="field-message"[^>]*aria-invalid="true" aria-describedby="field-message-hint field-message-error"/,
      );
      expect(res.body).toContain(`value="${typedName}"`);
      // The summary at the top links to each field.
      for (const id of ['field-name', 'field-email', 'field-message']) {
        expect(res.body).toContain(`href="#${id}"`);
      }

      const second = await postForm(
        rt,
        '/contact',
        { _csrf: csrfOf(res.body), name: '', email: 'x@example.com', message: typedMessage },
        jar,
      );
      expect(second.statusCode).toBe(400);
      expect(second.body).toContain('id="field-name-error">Enter your name.</p>');
      expect(second.body).not.toContain('id="field-message-error"');
      // The typed message comes back inside the textarea, escaped: it cannot close it.
      expect(second.body).not.toContain('<script>alert("m")</script>');
      expect(second.body).toMatch(/<textarea[^>]*>&lt;\/textarea(&gt;|>)&lt;script(&gt;|>)alert/);
      expect(await contactsOf(rt, 'x@example.com')).toHaveLength(0);
    });
  });

  describe('confirming by the link', () => {
    it('GET shows the summary and a Confirm button and changes nothing; POST accepts and delivers', async () => {
      const input = fields('link', { message: 'Line one\nLine two' });
      const mail = await submit(rt, input);
      await outboxIdle(rt);
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};

      const before = await snapshot(rt);
      const page = await getPage(rt, path, jar);
      const again = await rt.app.inject({ method: 'GET', url: path });
      const head = await rt.app.inject({ method: 'HEAD', url: path });
      expect(page.statusCode).toBe(200);
      expect(again.statusCode).toBe(200);
      expect(head.statusCode).toBe(200);
      expect(await snapshot(rt)).toEqual(before);

      expect(page.body).toContain('Send your message?');
      expect(page.body).toContain(`${input.name} (${input.email})`);
      expect(page.body).toContain('<dd class="message-body">Line one\nLine two</dd>');
      expect(page.body).toContain(`<form method="post" action="${path}">`);
      expect(page.body).toMatch(
        /<button type="submit" class="button" autofocus>Confirm and send<\/button>/,
      );
      expect((await contactOf(rt, input.email)).status).toBe('pending');

      const ownerRowsBefore = await countOutbox(rt, { to: OWNER });
      const accepted = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(accepted.statusCode).toBe(200);
      expect(accepted.body).toContain('Thank you: your message is on its way');

      const row = await contactOf(rt, input.email);
      expect(row.status).toBe('accepted');
      expect(Number(row.accepted_at)).toBe(rt.clock.now());
      expect((await verificationOf(rt, row.id))?.used_at).not.toBeNull();
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore + 1);

      const [delivered] = await deliveryFrom(rt, input.email);
      expect(delivered?.to).toEqual([OWNER]);
      expect(delivered?.subject).toBe(`${SUBJECT_PREFIX}${input.name}`);
      expect(delivered?.text).toContain('Line one');
      expect(delivered?.text).toContain('Line two');
      expect(delivered?.html).toMatch(/Line one<\/span><span><br\/?>Line two/);
      expect(delivered?.provenance).toMatchObject({
        template: 'contact-delivery',
        flow: 'contact',
      });
      const raw = rt.inbox?.raw(delivered?.id ?? 0) ?? Buffer.alloc(0);
      const parsed = await simpleParser(raw);
      expect(parsed.replyTo?.value).toEqual([{ address: input.email, name: input.name }]);
      expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value : null).toEqual([
        { address: OWNER, name: '' },
      ]);

      // Second click: "already submitted", nothing more delivered.
      const second = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(second.statusCode).toBe(200);
      expect(second.body).toContain('This message was already submitted');
      expect(second.body).not.toContain('Thank you');
      const reopened = await getPage(rt, path, jar);
      expect(reopened.statusCode).toBe(200);
      expect(reopened.body).toContain('This message was already submitted');
      expect(reopened.body).not.toContain('Confirm and send');
      await outboxIdle(rt);
      await sleep(100);
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore + 1);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(1);
    });

    it('API: accepted, then already_accepted; one delivery', async () => {
      const input = fields('apitoken');
      const mail = await submit(rt, input);
      const token = tokenOf(mail.verification.url);
      const ownerRowsBefore = await countOutbox(rt, { to: OWNER });
      const first = await apiConfirm(rt, { token });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toEqual({ status: 'accepted' });
      const second = await apiConfirm(rt, { token });
      expect(second.statusCode).toBe(200);
      expect(second.json()).toEqual({ status: 'already_accepted' });
      await deliveryFrom(rt, input.email);
      await outboxIdle(rt);
      await sleep(100);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(1);
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore + 1);
    });

    it('two confirms racing: one accepted, one already_accepted, one delivery', async () => {
      const input = fields('race');
      const mail = await submit(rt, input);
      const token = tokenOf(mail.verification.url);
      const ownerRowsBefore = await countOutbox(rt, { to: OWNER });
      const eventsBefore = events.length;
      const results = await Promise.all([apiConfirm(rt, { token }), apiConfirm(rt, { token })]);
      expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
      expect(results.map((r) => r.json().status).sort()).toEqual(['accepted', 'already_accepted']);
      await deliveryFrom(rt, input.email);
      await outboxIdle(rt);
      await sleep(100);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(1);
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore + 1);
      expect(events.slice(eventsBefore).map((e) => e.email)).toEqual([input.email]);
    });

    it('link and code racing: one accepted, one already_accepted, one delivery', async () => {
      const input = fields('racecode');
      const mail = await submit(rt, input);
      const ownerRowsBefore = await countOutbox(rt, { to: OWNER });
      const results = await Promise.all([
        apiConfirm(rt, { token: tokenOf(mail.verification.url) }),
        apiConfirm(rt, { email: input.email, code: mail.verification.code }),
      ]);
      expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
      expect(results.map((r) => r.json().status).sort()).toEqual(['accepted', 'already_accepted']);
      await deliveryFrom(rt, input.email);
      await outboxIdle(rt);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(1);
      expect(await countOutbox(rt, { to: OWNER })).toBe(ownerRowsBefore + 1);
    });

    it('answers a link that is not valid: 400 page and token_invalid', async () => {
      for (const token of ['A'.repeat(43), 'short']) {
        const page = await getPage(rt, `/contact/confirm/${token}`);
        expect(page.statusCode).toBe(400);
        expect(page.body).toContain('This link is not valid');
        expect(page.body).not.toContain('Confirm and send');
        const res = await apiConfirm(rt, { token });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual({
          error: { code: 'token_invalid', message: expect.any(String) },
        });
      }
    });

    it('a sign-up token does not confirm a contact message, nor the reverse', async () => {
      const email = address('crossflow');
      const signup = await rt.app.inject({
        method: 'POST',
        url: '/api/signup',
        payload: { email, password: 'lantern orchard pebble' },
      });
      expect(signup.statusCode).toBe(202);
      const signupMail = await rt.mailTo(email);
      const res = await apiConfirm(rt, { token: tokenOf(signupMail.verification.url) });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'token_invalid' } });

      const contactMail = await submit(rt, { ...fields('crossflow2'), email });
      const verify = await rt.app.inject({
        method: 'POST',
        url: '/api/verify',
        payload: { token: tokenOf(contactMail.verification.url) },
      });
      expect(verify.statusCode).toBe(400);
      expect((await contactOf(rt, email)).status).toBe('pending');
    });
  });

  describe('confirming by the code', () => {
    it('API {email, code}: accepted, then already_accepted; the link then says already submitted', async () => {
      const input = fields('code');
      const mail = await submit(rt, input);
      const code = mail.verification.code ?? '';
      const first = await apiConfirm(rt, {
        email: ` ${input.email.toUpperCase()} `,
        code: `${code.slice(0, 4)} ${code.slice(4)}`,
      });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toEqual({ status: 'accepted' });
      expect((await contactOf(rt, input.email)).status).toBe('accepted');
      expect((await apiConfirm(rt, { email: input.email, code })).json()).toEqual({
        status: 'already_accepted',
      });
      expect((await apiConfirm(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
        status: 'already_accepted',
      });
      const page = await getPage(rt, pathOf(mail.verification.url ?? ''));
      expect(page.body).toContain('This message was already submitted');
      await deliveryFrom(rt, input.email);
      await outboxIdle(rt);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(1);
    });

    it('a wrong code → 400 code_invalid (and for an unknown address); the message stays pending', async () => {
      const input = fields('wrongcode');
      const mail = await submit(rt, input);
      const wrong = await apiConfirm(rt, {
        email: input.email,
        code: wrongCode(mail.verification.code),
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json()).toEqual({
        error: { code: 'code_invalid', message: expect.any(String) },
      });
      const unknown = await apiConfirm(rt, {
        email: address('nobody'),
        code: mail.verification.code,
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.body).toBe(wrong.body);
      const row = await contactOf(rt, input.email);
      expect(row.status).toBe('pending');
      expect((await verificationOf(rt, row.id))?.code_attempts).toBe(1);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(0);
    });

    it('5 wrong codes → too_many_attempts, even for the right one; the link still works', async () => {
      const input = fields('attempts');
      const mail = await submit(rt, input);
      const wrong = wrongCode(mail.verification.code);
      for (let i = 1; i <= 4; i += 1) {
        const res = await apiConfirm(rt, { email: input.email, code: wrong });
        expect(res.json()).toMatchObject({ error: { code: 'code_invalid' } });
      }
      // The fifth wrong code, and any after it, get the answer any wrong code gets: only the
      // right code tells that the attempts ran out (no probing for pending messages).
      for (let i = 5; i <= 6; i += 1) {
        const late = await apiConfirm(rt, { email: input.email, code: wrong });
        expect(late.statusCode).toBe(400);
        expect(late.json()).toMatchObject({ error: { code: 'code_invalid' } });
      }
      const right = await apiConfirm(rt, { email: input.email, code: mail.verification.code });
      expect(right.json()).toMatchObject({ error: { code: 'too_many_attempts' } });
      expect((await contactOf(rt, input.email)).status).toBe('pending');
      expect((await apiConfirm(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
        status: 'accepted',
      });
    });

    it('works on the /contact/confirm page, with errors next to the field', async () => {
      const input = fields('codepage');
      const mail = await submit(rt, input);
      const jar: Jar = {};
      const page = await getPage(
        rt,
        `/contact/confirm?email=${encodeURIComponent(input.email)}`,
        jar,
      );
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(new RegExp(`<input id="field-email"[^>]*value="${input.email}"`));
      const wrong = await postForm(
        rt,
        '/contact/confirm',
        { _csrf: csrfOf(page.body), email: input.email, code: wrongCode(mail.verification.code) },
        jar,
      );
      expect(wrong.statusCode).toBe(400);
      expect(wrong.body).toMatch(
        /<p class="error" id="field-code-error">That code is not right[^<]*<\/p><input id="field-code"[^>]*aria-invalid="true"/,
      );
      const malformed = await postForm(
        rt,
        '/contact/confirm',
        { _csrf: csrfOf(page.body), email: input.email, code: '12' },
        jar,
      );
      expect(malformed.statusCode).toBe(400);
      expect(malformed.body).toContain('id="field-code-error">Enter the 8 digits of the code.</p>');
      const right = await postForm(
        rt,
        '/contact/confirm',
        { _csrf: csrfOf(wrong.body), email: input.email, code: mail.verification.code ?? '' },
        jar,
      );
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('Thank you: your message is on its way');
      expect((await contactOf(rt, input.email)).status).toBe('accepted');
    });
  });

  describe('an expired link', () => {
    it('expires after 15 minutes: the API answers 410 token_expired', async () => {
      const input = fields('expiry');
      const mail = await submit(rt, input);
      const token = tokenOf(mail.verification.url);
      rt.clock.advance(15 * MINUTE - 1);
      expect((await getPage(rt, `/contact/confirm/${token}`)).statusCode).toBe(200);
      rt.clock.advance(1);
      const res = await apiConfirm(rt, { token });
      expect(res.statusCode).toBe(410);
      expect(res.json()).toEqual({ error: { code: 'token_expired', message: expect.any(String) } });
      expect((await contactOf(rt, input.email)).status).toBe('pending');
      // The code lives no longer than the link.
      const byCode = await apiConfirm(rt, { email: input.email, code: mail.verification.code });
      expect(byCode.statusCode).toBe(410);
      expect(byCode.json()).toMatchObject({ error: { code: 'token_expired' } });
      await outboxIdle(rt);
      expect(deliveriesFrom(rt, input.email)).toHaveLength(0);
    });

    it('the page offers "Send a new link" for the same message; the fresh link works', async () => {
      const input = fields('resend');
      const mail = await submit(rt, input);
      const token = tokenOf(mail.verification.url);
      const row = await contactOf(rt, input.email);
      rt.clock.advance(15 * MINUTE + 1);

      const jar: Jar = {};
      await outboxIdle(rt);
      const before = await snapshot(rt);
      const page = await getPage(rt, `/contact/confirm/${token}`, jar);
      expect(await snapshot(rt)).toEqual(before);
      expect(page.statusCode).toBe(410);
      expect(page.body).toContain('This link has expired');
      expect(page.body).toContain('<form method="post" action="/contact/resend">');
      expect(page.body).toContain(`<input type="hidden" name="token" value="${token}"/>`);
      expect(page.body).toMatch(/<button type="submit" class="button">Send a new link<\/button>/);
      expect(page.body).not.toContain(input.email);

      const since = latestId(rt, input.email);
      const sent = await postForm(rt, '/contact/resend', { _csrf: csrfOf(page.body), token }, jar);
      expect(sent.statusCode).toBe(200);
      expect(sent.body).toContain('Check your inbox');
      expect(sent.body).not.toContain(input.email);

      const fresh = await rt.mailTo(input.email, { since });
      expect(fresh.subject).toBe('Confirm your message to Mailproof');
      expect(fresh.text).toContain('Hello from resend.');
      const freshToken = tokenOf(fresh.verification.url);
      expect(freshToken).not.toBe(token);
      // The same pending message, not a new one; one live secret for it.
      expect((await contactOf(rt, input.email)).id).toBe(row.id);
      const verifications = await rt.db.kysely
        .selectFrom('verifications')
        .selectAll()
        .where('target', '=', row.id)
        .execute();
      expect(verifications).toHaveLength(1);
      expect(Number(verifications[0]?.expires_at)).toBe(rt.clock.now() + 15 * MINUTE);

      // The old link is now invalid; the fresh one works on the page.
      expect((await apiConfirm(rt, { token })).json()).toMatchObject({
        error: { code: 'token_invalid' },
      });
      const freshPath = pathOf(fresh.verification.url ?? '');
      const confirmPage = await getPage(rt, freshPath, jar);
      expect(confirmPage.statusCode).toBe(200);
      const accepted = await postForm(rt, freshPath, { _csrf: csrfOf(confirmPage.body) }, jar);
      expect(accepted.statusCode).toBe(200);
      expect(accepted.body).toContain('Thank you');
      expect((await contactOf(rt, input.email)).status).toBe('accepted');
      const delivered = await deliveryFrom(rt, input.email);
      expect(delivered).toHaveLength(1);

      // A resend for an accepted message sends nothing.
      const after = await postForm(
        rt,
        '/contact/resend',
        { _csrf: csrfOf(confirmPage.body), token: freshToken },
        jar,
      );
      expect(after.statusCode).toBe(400);
      expect(await countOutbox(rt, { to: input.email })).toBe(2);
    });

    it('POSTing the confirm page after expiry answers 410 with the same offer', async () => {
      const input = fields('expiredpost');
      const mail = await submit(rt, input);
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      rt.clock.advance(15 * MINUTE);
      const res = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      expect(res.statusCode).toBe(410);
      expect(res.body).toContain('This link has expired');
      expect(res.body).toContain(`name="token" value="${tokenOf(mail.verification.url)}"`);
      expect((await contactOf(rt, input.email)).status).toBe('pending');
    });

    it('refuses a resend with a forged token (400) and sends nothing', async () => {
      const jar: Jar = {};
      const page = await getPage(rt, '/contact', jar);
      const outboxBefore = await countOutbox(rt, {});
      for (const token of ['A'.repeat(43), 'nope', '']) {
        const res = await postForm(rt, '/contact/resend', { _csrf: csrfOf(page.body), token }, jar);
        expect(res.statusCode, token).toBe(400);
        expect(res.body).toContain('This link is not valid');
      }
      expect(await countOutbox(rt, {})).toBe(outboxBefore);
    });
  });

  describe('header injection and escaping', () => {
    it('refuses a name with CR or LF (API and page): 400 name_invalid, nothing stored', async () => {
      const names = [
        'Eve\r\nBcc: victim@example.net',
        'Eve\nBcc: victim@example.net',
        'Eve\rSubject: hi',
        'Eve\r\n\r\n<html>body</html>',
      ];
      for (const name of names) {
        const input = fields('crlf', { name });
        const res = await apiContact(rt, input);
        expect(res.statusCode, JSON.stringify(name)).toBe(400);
        expect(res.json()).toMatchObject({ error: { code: 'name_invalid', field: 'name' } });
        const page = await submitPage(rt, input);
        expect(page.statusCode).toBe(400);
        expect(page.body).toContain('id="field-name-error">Enter your name on one line');
        expect(await contactsOf(rt, input.email)).toHaveLength(0);
      }
    });

    const hostileNames = [
      '<b>Bold</b> & "quoted" \'single\' <script>alert(1)</script>',
      'Mallory <mallory@evil.test>',
      'Eve" <eve@evil.test>, "x',
      'a, b@evil.test; Bcc: c@evil.test',
      'Ωμέγα Ünïcödé 名前 '.repeat(6).slice(0, 100),
      '=?UTF-8?B?QmNjOiBldmlsQGV2aWwudGVzdA==?=',
      'Zoë\u2028Bcc: d@evil.test',
    ];

    for (const [i, name] of hostileNames.entries()) {
      it(`delivers name #${i} only as data: one Subject, one Reply-To equal to the sender, no Bcc`, async () => {
        const input = fields(`hdr${i}`, {
          name,
          message: `Body for ${i}\r\nBcc: e@evil.test\r\n\r\n<script>alert("x")</script>\n${'long'.repeat(900)}`,
        });
        const mail = await submit(rt, input);
        expect((await apiConfirm(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
          status: 'accepted',
        });
        const [delivered] = await deliveryFrom(rt, input.email);
        const raw = rt.inbox?.raw(delivered?.id ?? 0);
        if (!raw) throw new Error('no raw message');

        expect(headersNamed(raw, 'subject')).toHaveLength(1);
        expect(headersNamed(raw, 'reply-to')).toHaveLength(1);
        expect(headersNamed(raw, 'to')).toEqual([OWNER]);
        expect(headersNamed(raw, 'from')).toHaveLength(1);
        for (const forbidden of ['bcc', 'cc', 'sender', 'return-path']) {
          expect(headersNamed(raw, forbidden), forbidden).toEqual([]);
        }
        // RFC 5322: no line over 998 characters, in the headers or the body.
        const longest = Math.max(
          ...raw
            .toString('utf8')
            .split('\r\n')
            .map((l) => l.length),
        );
        expect(longest).toBeLessThanOrEqual(998);
        // No bare CR or LF anywhere in the message.
        expect(raw.toString('latin1').replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);

        const parsed = await simpleParser(raw);
        expect(parsed.replyTo?.value).toHaveLength(1);
        expect(parsed.replyTo?.value[0]?.address).toBe(input.email);
        expect(parsed.bcc).toBeUndefined();
        expect(parsed.cc).toBeUndefined();
        expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value : []).toEqual([
          { address: OWNER, name: '' },
        ]);
        expect(parsed.subject?.startsWith(SUBJECT_PREFIX)).toBe(true);
        expect(parsed.subject).not.toMatch(/[\r\n]/);
        // SPEC §3: a name holding markup (or an encoded word, which clients decode) never
        // reaches a header; the verified address stands in for it. Any other name does, on one line.
        const inHeaders = !/[<>]|=\?/.test(name);
        expect(parsed.subject).toBe(`${SUBJECT_PREFIX}${inHeaders ? oneLine(name) : input.email}`);
        expect(parsed.replyTo?.value[0]?.name).toBe(inHeaders ? oneLine(name) : '');

        // The HTML part carries the name and message escaped, never as markup.
        const html = delivered?.html ?? '';
        expect(html).not.toContain('<script>alert');
        expect(html).toMatch(/&lt;script(&gt;|>)alert\(&quot;x&quot;\)&lt;\/script/);
        if (name.includes('<b>')) {
          expect(html).not.toContain('<b>Bold</b>');
          expect(html).toMatch(/&lt;b(&gt;|>)Bold&lt;\/b/);
        }
        // The stored row is exactly what was typed (trimmed), never rewritten.
        expect((await contactOf(rt, input.email)).name).toBe(name.trim());
      });
    }

    it('escapes a hostile message on the confirm page, the admin page and in both emails', async () => {
      const name = 'Eve <img src=x onerror=alert(1)>';
      const message =
        '<script>alert("pwned")</script>\n<a href="javascript:alert(1)">click</a> & "more"';
      const input = fields('escape', { name, message });
      const mail = await submit(rt, input);
      // The verification email quotes the name and message, escaped.
      expect(mail.html).not.toContain('<script>alert');
      expect(mail.html).not.toContain('<img src=x');
      expect(mail.html).toMatch(ESCAPED_PWNED);
      expect(mail.html).not.toContain('href="javascript:');

      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('<script>alert');
      expect(page.body).not.toContain('<img src=x');
      expect(page.body).not.toContain('href="javascript:');
      expect(page.body).toMatch(ESCAPED_PWNED);
      expect(page.body).toMatch(/Eve &lt;img src=x onerror=alert\(1\)(&gt;|>) \(/);

      await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      const [delivered] = await deliveryFrom(rt, input.email);
      const html = delivered?.html ?? '';
      expect(html).not.toContain('<script>alert');
      expect(html).not.toContain('<img src=x');
      expect(html).not.toContain('href="javascript:');
      expect(html).toMatch(ESCAPED_PWNED);
      expect(delivered?.text).toContain('<script>alert("pwned")</script>');

      const admin = await rt.app.inject({
        url: '/admin/contact',
        headers: { authorization: basic('owner', ADMIN_TOKEN) },
      });
      expect(admin.statusCode).toBe(200);
      expect(admin.body).not.toContain('<script>alert');
      expect(admin.body).not.toContain('<img src=x');
      expect(admin.body).not.toContain('href="javascript:');
      expect(admin.body).toMatch(ESCAPED_PWNED);
      expect(admin.body).toMatch(/<strong>Eve &lt;img src=x onerror=alert\(1\)(&gt;|>)<\/strong>/);
    });
  });

  describe('rate limits', () => {
    it('per address: the 4th message to one address within an hour is 429 with Retry-After', async () => {
      const email = address('peraddress');
      for (let i = 1; i <= 3; i += 1) {
        const res = await apiContact(rt, { name: `N${i}`, email, message: `M${i}` });
        expect(res.statusCode, `message ${i}`).toBe(202);
      }
      // Another spelling of the same address counts against the same limit.
      const res = await apiContact(rt, {
        name: 'N4',
        email: ` ${email.toUpperCase()}`,
        message: 'M4',
      });
      expect(res.statusCode).toBe(429);
      const retryAfter = Number(res.headers['retry-after']);
      expect(String(res.headers['retry-after'])).toMatch(/^\d+$/);
      expect(retryAfter).toBeGreaterThan(3000);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      expect(res.json()).toMatchObject({
        error: {
          code: 'rate_limited',
          message: expect.stringContaining(String(retryAfter)),
          retryAfterSeconds: retryAfter,
        },
      });
      // The stranger's inbox got 3 messages, not 4; another address is not held back.
      expect(await contactsOf(rt, email)).toHaveLength(3);
      expect(await countOutbox(rt, { to: email })).toBe(3);
      expect((await apiContact(rt, fields('otheraddress'))).statusCode).toBe(202);
    });

    it('per address on the page: a "Please wait" page with 429 and Retry-After', async () => {
      const email = address('peraddresspage');
      const jar: Jar = {};
      for (let i = 1; i <= 3; i += 1) {
        const res = await submitPage(rt, { name: 'Page', email, message: `M${i}` }, jar);
        expect(res.statusCode).toBe(200);
      }
      const res = await submitPage(rt, { name: 'Page', email, message: 'M4' }, jar);
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(res.body).toContain('Please wait');
      expect(res.body).toMatch(/You can try again in (5\d|60) minutes/);
      expect(await contactsOf(rt, email)).toHaveLength(3);
    });

    it('a resend from an expired link counts against the address too', async () => {
      const input = fields('resendlimit');
      const mail = await submit(rt, input);
      await apiContact(rt, { ...input, message: 'second' });
      await apiContact(rt, { ...input, message: 'third' });
      rt.clock.advance(15 * MINUTE + 1);
      const jar: Jar = {};
      const page = await getPage(rt, pathOf(mail.verification.url ?? ''), jar);
      expect(page.statusCode).toBe(410);
      const res = await postForm(
        rt,
        '/contact/resend',
        { _csrf: csrfOf(page.body), token: tokenOf(mail.verification.url) },
        jar,
      );
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(res.body).toContain('Please wait');
      expect(await countOutbox(rt, { to: input.email })).toBe(3);
    });
  });

  describe('the admin page', () => {
    it('asks for basic auth: 401 with WWW-Authenticate without or with wrong credentials', async () => {
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: basic('owner', 'wrong-password') },
        { authorization: basic('owner', `${ADMIN_TOKEN}x`) },
        { authorization: basic(ADMIN_TOKEN, '') },
        { authorization: `Bearer ${ADMIN_TOKEN}` },
        { authorization: 'Basic !!!not-base64' },
      ];
      for (const [i, headers] of attempts.entries()) {
        const res = await rt.app.inject({ url: '/admin/contact', headers });
        expect(res.statusCode, `attempt ${i}`).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic realm="[^"]+"/);
        expect(res.body).not.toContain(ADMIN_TOKEN);
        expect(res.body).not.toContain('Contact messages');
      }
    });

    it('lists accepted messages newest first, and never pending ones', async () => {
      const older = fields('adminolder', { message: 'The older message' });
      const newer = fields('adminnewer', { message: 'The newer message' });
      const pending = fields('adminpending', { message: 'Never confirmed' });
      const olderMail = await submit(rt, older);
      const newerMail = await submit(rt, newer);
      await submit(rt, pending);
      await apiConfirm(rt, { token: tokenOf(olderMail.verification.url) });
      rt.clock.advance(1000);
      await apiConfirm(rt, { token: tokenOf(newerMail.verification.url) });

      for (const user of ['owner', 'anyone', '']) {
        const res = await rt.app.inject({
          url: '/admin/contact',
          headers: { authorization: basic(user, ADMIN_TOKEN) },
        });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/html/);
        expect(res.body).toContain('Contact messages');
        expect(res.body).not.toContain(ADMIN_TOKEN);
        const body = res.body;
        expect(body).toContain(`<strong>${older.name}</strong>`);
        expect(body).toContain(`href="mailto:${older.email}"`);
        expect(body).toContain('The older message');
        expect(body).toContain('The newer message');
        expect(body).not.toContain('Never confirmed');
        expect(body).not.toContain(pending.email);
        expect(body.indexOf('The newer message')).toBeLessThan(body.indexOf('The older message'));
        const acceptedAt = new Date(rt.clock.now()).toISOString();
        expect(body).toContain(`<time datetime="${acceptedAt}">`);
      }
    });
  });

  describe('the in-process hook', () => {
    it("emits 'contact.accepted' once per accepted message, with its data, after the commit", async () => {
      const input = fields('hook', { message: 'Hook me' });
      const mail = await submit(rt, input);
      const start = events.length;
      const path = pathOf(mail.verification.url ?? '');
      const jar: Jar = {};
      const page = await getPage(rt, path, jar);
      expect(events.length).toBe(start); // opening the link fires nothing

      let seenStatus: string | undefined;
      const probe = async (event: AcceptedContactEvent) => {
        // The hook runs after the commit: the row is already accepted for any reader.
        const row = await rt.db.kysely
          .selectFrom('contact_messages')
          .select('status')
          .where('id', '=', event.id)
          .executeTakeFirst();
        seenStatus = row?.status;
      };
      rt.ctx.events.once('contact.accepted', probe);
      await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
      await apiConfirm(rt, { token: tokenOf(mail.verification.url) });
      await apiConfirm(rt, { email: input.email, code: mail.verification.code });

      const row = await contactOf(rt, input.email);
      const mine = events.slice(start);
      expect(mine).toEqual([
        {
          id: row.id,
          name: input.name,
          email: input.email,
          message: 'Hook me',
          acceptedAt: new Date(rt.clock.now()).toISOString(),
        },
      ]);
      await vi.waitFor(() => expect(seenStatus).toBe('accepted'));
    });

    it('a hook that throws does not fail the confirmation or the delivery', async () => {
      const input = fields('hookthrows');
      const mail = await submit(rt, input);
      const boom = () => {
        throw new Error('listener failed');
      };
      rt.ctx.events.on('contact.accepted', boom);
      try {
        const res = await apiConfirm(rt, { token: tokenOf(mail.verification.url) });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ status: 'accepted' });
      } finally {
        rt.ctx.events.off('contact.accepted', boom);
      }
      expect(await deliveryFrom(rt, input.email)).toHaveLength(1);
    });

    it('no webhook row is queued when CONTACT_WEBHOOK_URL is unset', async () => {
      await outboxIdle(rt);
      expect(await countOutbox(rt, { kind: 'webhook' })).toBe(0);
    });
  });
});

describe('GET has no side effects', () => {
  it('opening every emailed link (and the code page) changes no row', async () => {
    const rt = await createTestRuntime({ env: { ADMIN_TOKEN } });
    try {
      const expired = fields('scanexpired');
      const resent = fields('scanresent');
      const pending = fields('scanpending');
      const accepted = fields('scanaccepted');
      const expiredMail = await submit(rt, expired);
      const resentFirst = await submit(rt, resent);
      rt.clock.advance(15 * MINUTE + 1);
      // A resend replaces resent's first link with a fresh one.
      const jar: Jar = {};
      const expiredPage = await getPage(rt, pathOf(resentFirst.verification.url ?? ''), jar);
      await postForm(
        rt,
        '/contact/resend',
        { _csrf: csrfOf(expiredPage.body), token: tokenOf(resentFirst.verification.url) },
        jar,
      );
      await rt.mailTo(resent.email, { since: resentFirst.id });
      await submit(rt, pending);
      const acceptedMail = await submit(rt, accepted);
      await apiConfirm(rt, { token: tokenOf(acceptedMail.verification.url) });
      await deliveryFrom(rt, accepted.email);
      await outboxIdle(rt);
      expect(expiredMail.verification.url).toBeTruthy();

      const inbox = rt.inbox;
      if (!inbox) throw new Error('no inbox');
      const messages = inbox.list({ limit: 500 }).map((m) => inbox.get(m.id));
      expect(messages).toHaveLength(6); // 5 verification messages + 1 delivery
      const links = [...new Set(messages.flatMap((m) => m?.links ?? []))];
      expect(links.filter((link) => link.includes('/contact/confirm/'))).toHaveLength(5);
      const extra = [
        `/contact/confirm?email=${encodeURIComponent(pending.email)}`,
        '/contact',
        '/admin/contact',
      ];

      const before = await snapshot(rt);
      const eventsFired: unknown[] = [];
      rt.ctx.events.on('contact.accepted', (e) => eventsFired.push(e));
      for (const url of [...links.map(pathOf), ...extra]) {
        for (const method of ['GET', 'HEAD', 'GET'] as const) {
          const res = await rt.app.inject({
            method,
            url,
            headers: { authorization: basic('owner', ADMIN_TOKEN) },
          });
          expect(res.statusCode, `${method} ${url}`).toBeLessThan(500);
        }
      }
      await sleep(100);
      expect(await snapshot(rt)).toEqual(before);
      expect(eventsFired).toEqual([]);
      const states = await rt.db.kysely
        .selectFrom('contact_messages')
        .select(['email', 'status'])
        .where('status', '=', 'accepted')
        .execute();
      expect(states.map((s) => s.email)).toEqual([accepted.email]);
    } finally {
      await rt.close();
    }
  });
});

describe('purging unconfirmed messages', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    vi.useRealTimers();
    await rt.close();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('purgePendingContacts deletes pending rows older than 24 h with their secrets; accepted rows stay', async () => {
    const old = fields('purgeold');
    const oldAccepted = fields('purgeaccepted');
    const young = fields('purgeyoung');
    const oldMail = await submit(rt, old);
    const acceptedMail = await submit(rt, oldAccepted);
    expect(
      (await apiConfirm(rt, { token: tokenOf(acceptedMail.verification.url) })).json(),
    ).toEqual({
      status: 'accepted',
    });
    const oldRow = await contactOf(rt, old.email);
    const acceptedRow = await contactOf(rt, oldAccepted.email);

    rt.clock.advance(23 * HOUR);
    await submit(rt, young);
    const youngRow = await contactOf(rt, young.email);

    // Exactly 24 hours old: kept.
    rt.clock.advance(HOUR);
    expect(await purgePendingContacts(rt.ctx)).toBe(0);
    expect(await contactsOf(rt, old.email)).toHaveLength(1);

    rt.clock.advance(1);
    expect(await purgePendingContacts(rt.ctx)).toBe(1);
    expect(await contactsOf(rt, old.email)).toHaveLength(0);
    expect(await verificationOf(rt, oldRow.id)).toBeUndefined();
    expect((await contactOf(rt, oldAccepted.email)).status).toBe('accepted');
    expect(await verificationOf(rt, acceptedRow.id)).toBeDefined();
    expect((await contactOf(rt, young.email)).status).toBe('pending');
    expect(await verificationOf(rt, youngRow.id)).toBeDefined();

    // The purged message's link is simply invalid now; nothing can deliver it.
    const page = await getPage(rt, pathOf(oldMail.verification.url ?? ''));
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('This link is not valid');
    const res = await apiConfirm(rt, { token: tokenOf(oldMail.verification.url) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'token_invalid' } });
    const code = await apiConfirm(rt, { email: old.email, code: oldMail.verification.code });
    expect(code.json()).toMatchObject({ error: { code: 'code_invalid' } });
    expect(await purgePendingContacts(rt.ctx)).toBe(0);
  });

  it('honours CONTACT_PENDING_RETENTION and CONTACT_LINK_TTL', async () => {
    const custom = await createTestRuntime({
      env: { CONTACT_PENDING_RETENTION: '2h', CONTACT_LINK_TTL: '5m' },
    });
    try {
      const input = fields('customttl');
      const mail = await submit(custom, input);
      expect(mail.text).toMatch(/5 minutes/);
      const row = await contactOf(custom, input.email);
      expect(Number((await verificationOf(custom, row.id))?.expires_at)).toBe(
        custom.clock.now() + 5 * MINUTE,
      );
      custom.clock.advance(5 * MINUTE);
      const res = await apiConfirm(custom, { token: tokenOf(mail.verification.url) });
      expect(res.statusCode).toBe(410);
      expect(res.json()).toMatchObject({ error: { code: 'token_expired' } });
      custom.clock.advance(2 * HOUR - 5 * MINUTE);
      expect(await purgePendingContacts(custom.ctx)).toBe(0);
      custom.clock.advance(1);
      expect(await purgePendingContacts(custom.ctx)).toBe(1);
      expect(await contactsOf(custom, input.email)).toHaveLength(0);
    } finally {
      await custom.close();
    }
  });

  it('the runtime purges every minute once its worker is started', async () => {
    const input = fields('purgetimer');
    await submit(rt, input);
    rt.clock.advance(24 * HOUR + 1);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    rt.startWorker();
    expect(await contactsOf(rt, input.email)).toHaveLength(1);
    vi.advanceTimersByTime(60_000);
    await vi.waitFor(async () => expect(await contactsOf(rt, input.email)).toHaveLength(0), {
      timeout: 5000,
    });
  });
});

describe('per-client rate limit', () => {
  it('RATE_LIMIT_CONTACT_CLIENT=2/1h: the 3rd message from one client is 429, on the API and the page', async () => {
    const rt = await createTestRuntime({ env: { RATE_LIMIT_CONTACT_CLIENT: '2/1h' } });
    try {
      expect((await apiContact(rt, fields('client1'))).statusCode).toBe(202);
      expect((await apiContact(rt, fields('client2'))).statusCode).toBe(202);
      const third = fields('client3');
      const res = await apiContact(rt, third);
      expect(res.statusCode).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(3000);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(3600);
      expect(res.json()).toMatchObject({ error: { code: 'rate_limited' } });
      expect(await contactsOf(rt, third.email)).toHaveLength(0);

      const page = await submitPage(rt, fields('client4'));
      expect(page.statusCode).toBe(429);
      expect(page.headers['retry-after']).toMatch(/^\d+$/);
      expect(page.body).toContain('Please wait');
      expect(page.body).toMatch(/You can try again in \d+ minutes/);

      // Another client (a different address behind no proxy) is not held back.
      const other = await rt.app.inject({
        method: 'POST',
        url: '/api/contact',
        payload: fields('client5'),
        remoteAddress: '203.0.113.9',
      });
      expect(other.statusCode).toBe(202);
    } finally {
      await rt.close();
    }
  });
});

describe('without CONTACT_TO', () => {
  it('in production the form is off: /contact 404, POST /api/contact 404 contact_disabled', async () => {
    const rt = await createTestRuntime({
      worker: false,
      env: {
        NODE_ENV: 'production',
        SECRET_KEY: 'a-production-secret-that-is-long-enough-0123456789',
        BASE_URL: 'https://accounts.example.com',
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: '9',
        LOG_LEVEL: 'silent',
      },
    });
    try {
      expect(rt.config.contact.to).toBeNull();
      const page = await rt.app.inject({ url: '/contact' });
      expect(page.statusCode).toBe(404);
      expect(page.body).toContain('Contact form not available');
      expect(page.body).not.toContain('<form method="post" action="/contact"');

      const email = 'prod-contact@example.com';
      const res = await apiContact(rt, { name: 'Prod', email, message: 'Hello' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({
        error: { code: 'contact_disabled', message: expect.any(String) },
      });

      // The page POST with a genuine CSRF token is refused the same way.
      const jar: Jar = {};
      const signup = await getPage(rt, '/signup', jar);
      const post = await postForm(
        rt,
        '/contact',
        { _csrf: csrfOf(signup.body), name: 'Prod', email, message: 'Hello' },
        jar,
      );
      expect(post.statusCode).toBe(404);
      expect(await contactsOf(rt, email)).toHaveLength(0);
      expect(await countOutbox(rt, {})).toBe(0);

      // No ADMIN_TOKEN: the admin page does not exist.
      const admin = await rt.app.inject({
        url: '/admin/contact',
        headers: { authorization: basic('owner', 'anything') },
      });
      expect(admin.statusCode).toBe(404);
      expect(admin.headers['www-authenticate']).toBeUndefined();
    } finally {
      await rt.close();
    }
  });

  it('in production with CONTACT_TO set, the form works and delivery is queued to it', async () => {
    const rt = await createTestRuntime({
      worker: false,
      env: {
        NODE_ENV: 'production',
        SECRET_KEY: 'a-production-secret-that-is-long-enough-0123456789',
        BASE_URL: 'https://accounts.example.com',
        MAIL_SERVER: '127.0.0.1',
        MAIL_PORT: '9',
        LOG_LEVEL: 'silent',
        CONTACT_TO: 'inbox@accounts.example.com',
      },
    });
    try {
      expect((await rt.app.inject({ url: '/contact' })).statusCode).toBe(200);
      const email = 'prod-sender@example.com';
      expect((await apiContact(rt, { name: 'P', email, message: 'Hi' })).statusCode).toBe(202);
      const row = await rt.db.kysely
        .selectFrom('outbox')
        .select('payload')
        .where('to_address', '=', email)
        .executeTakeFirstOrThrow();
      const { url } = JSON.parse(row.payload ?? '{}') as { url: string };
      expect(url).toMatch(
        /^https:\/\/accounts\.example\.com\/contact\/confirm\/[A-Za-z0-9_-]{43}$/,
      );
      expect((await apiConfirm(rt, { token: tokenOf(url) })).json()).toEqual({
        status: 'accepted',
      });
      expect(await countOutbox(rt, { to: 'inbox@accounts.example.com' })).toBe(1);
    } finally {
      await rt.close();
    }
  });

  it('without ADMIN_TOKEN in development, /admin/contact is 404', async () => {
    const rt = await createTestRuntime({ worker: false });
    try {
      expect(rt.config.contact.to).toBe(OWNER);
      expect(rt.config.baseUrl).toBe(BASE_URL);
      const res = await rt.app.inject({ url: '/admin/contact' });
      expect(res.statusCode).toBe(404);
      expect(res.headers['www-authenticate']).toBeUndefined();
    } finally {
      await rt.close();
    }
  });
});

describe('mailproof contact list', () => {
  it('lists the messages accepted through the web, newest first, on this database', async () => {
    const rt = await createTestRuntime({ worker: false });
    try {
      const first = fields('clifirst', { message: 'First\nmessage' });
      const second = fields('clisecond', { name: 'Zoë <b>', message: 'Second one' });
      const pending = fields('clipending', { message: 'Never confirmed' });
      for (const input of [first, second, pending]) {
        expect((await apiContact(rt, input)).statusCode).toBe(202);
      }
      const tokens = await rt.db.kysely
        .selectFrom('outbox')
        .select(['to_address', 'payload'])
        .where('template', '=', 'contact-verify')
        .execute();
      const urlFor = (email: string) =>
        (JSON.parse(tokens.find((t) => t.to_address === email)?.payload ?? '{}') as { url: string })
          .url;
      await apiConfirm(rt, { token: tokenOf(urlFor(first.email)) });
      rt.clock.advance(1000);
      await apiConfirm(rt, { token: tokenOf(urlFor(second.email)) });

      const result = spawnSync(
        process.execPath,
        [path.resolve('bin/mailproof.js'), 'contact', 'list'],
        {
          cwd: rt.dataDir,
          env: {
            PATH: process.env.PATH ?? '',
            DATA_DIR: rt.dataDir,
            DATABASE_URL: rt.config.databaseUrl,
            LOG_LEVEL: 'silent',
          },
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe(
        `${new Date(rt.clock.now()).toISOString()}\tZoë <b> <${second.email}>\tSecond one`,
      );
      expect(lines[1]).toBe(
        `${new Date(rt.clock.now() - 1000).toISOString()}\t${first.name} <${first.email}>\tFirst message`,
      );
      expect(result.stdout).not.toContain('Never confirmed');
    } finally {
      await rt.close();
    }
  });
});
