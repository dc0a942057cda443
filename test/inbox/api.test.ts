// §5 / §6: the inbox's JSON API and pages, as a test suite or a developer uses them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { extractLinks, extractVerification } from '../../src/inbox/extract.ts';
import type { MessageDetail, MessageSummary } from '../../src/inbox/store.ts';
import { composeMime, type MailTransport } from '../../src/mail/transport.ts';
import { cookieHeader, csrfOf, type Jar, postForm, remember } from '../support/forms.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';

interface ApiError {
  error: { code: string; message: string };
}

async function seed(
  rt: TestRuntime,
  message: { to: string; subject: string; text: string; html?: string; from?: string },
): Promise<number> {
  const inbox = rt.inbox;
  if (!inbox) throw new Error('the inbox is disabled in this runtime');
  const raw = await composeMime({
    from: message.from ?? 'Other App <robot@other-app.test>',
    to: message.to,
    subject: message.subject,
    text: message.text,
    html:
      message.html ?? `<!DOCTYPE html><html lang="en"><body><p>${message.text}</p></body></html>`,
    messageId: `<seed-${Math.random().toString(36).slice(2)}@other-app.test>`,
    provenance: { template: 'seed', flow: 'test', requestId: null, outboxId: 'seed', attempt: 1 },
  });
  return inbox.ingest(raw, { from: 'robot@other-app.test', to: [message.to] });
}

async function signUp(rt: TestRuntime, email: string): Promise<void> {
  const res = await rt.app.inject({
    method: 'POST',
    url: '/api/signup',
    payload: { email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(202);
}

async function listMessages(rt: TestRuntime, query = ''): Promise<MessageSummary[]> {
  const res = await rt.app.inject({ method: 'GET', url: `/_inbox/api/messages${query}` });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return (res.json() as { messages: MessageSummary[] }).messages;
}

describe('inbox JSON API', () => {
  let rt: TestRuntime;

  beforeAll(async () => {
    rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
  });

  afterAll(async () => {
    await rt?.close();
  });

  beforeEach(() => {
    rt.inbox?.deleteAll();
  });

  it('lists messages newest first', async () => {
    const first = await seed(rt, { to: 'a@example.com', subject: 'First', text: 'one' });
    const second = await seed(rt, { to: 'b@example.com', subject: 'Second', text: 'two' });
    const third = await seed(rt, { to: 'a@example.com', subject: 'Third', text: 'three' });

    const messages = await listMessages(rt);
    expect(messages.map((m) => m.id)).toEqual([third, second, first]);
    expect(messages.map((m) => m.subject)).toEqual(['Third', 'Second', 'First']);
    expect(messages[0]).toMatchObject({
      id: third,
      from: '"Other App" <robot@other-app.test>',
      to: ['a@example.com'],
      subject: 'Third',
      read: false,
      snippet: 'three',
    });
    expect(Number.isNaN(Date.parse(messages[0]?.receivedAt ?? ''))).toBe(false);
    // The list carries summaries, not whole bodies.
    expect(messages[0]).not.toHaveProperty('html');
    expect(messages[0]).not.toHaveProperty('headers');

    expect((await listMessages(rt, '?limit=2')).map((m) => m.id)).toEqual([third, second]);
  });

  it('filters by recipient with ?to=, case-insensitively and exactly', async () => {
    const a1 = await seed(rt, { to: 'alice@example.com', subject: 'For Alice 1', text: 'x' });
    await seed(rt, { to: 'bob@example.com', subject: 'For Bob', text: 'x' });
    const a2 = await seed(rt, { to: 'alice@example.com', subject: 'For Alice 2', text: 'x' });
    await seed(rt, { to: 'malice@example.com', subject: 'For Malice', text: 'x' });

    const forAlice = await listMessages(rt, '?to=Alice%40Example.com');
    expect(forAlice.map((m) => m.id)).toEqual([a2, a1]);
    expect(await listMessages(rt, '?to=nobody%40example.com')).toEqual([]);
    // A wildcard in the address is not a wildcard.
    expect(await listMessages(rt, '?to=%25%40example.com')).toEqual([]);
  });

  it('searches subject and text with ?q=', async () => {
    const bySubject = await seed(rt, {
      to: 'q1@example.com',
      subject: 'Quarterly pineapple report',
      text: 'Nothing special here.',
    });
    const byText = await seed(rt, {
      to: 'q2@example.com',
      subject: 'Hello',
      text: 'The pineapple shipment arrives Monday.',
    });
    await seed(rt, { to: 'q3@example.com', subject: 'Unrelated', text: 'Apples only.' });

    const found = await listMessages(rt, '?q=PINEAPPLE');
    expect(found.map((m) => m.id)).toEqual([byText, bySubject]);
    expect((await listMessages(rt, '?q=quarterly')).map((m) => m.id)).toEqual([bySubject]);
    expect((await listMessages(rt, '?q=shipment')).map((m) => m.id)).toEqual([byText]);
    expect(await listMessages(rt, '?q=banana')).toEqual([]);
    expect((await listMessages(rt, '?q=pineapple&to=q2%40example.com')).map((m) => m.id)).toEqual([
      byText,
    ]);
  });

  it('answers a bad query with a 400 JSON error', async () => {
    const res = await rt.app.inject({ method: 'GET', url: '/_inbox/api/messages?limit=0' });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ApiError).error.code).toBe('invalid_request');
  });

  it('returns one message with headers, subject, from, to, text, html, links and verification', async () => {
    const id = await seed(rt, {
      to: 'detail@example.com',
      subject: 'Confirm your address',
      text: 'Open https://app.test/verify/tok123 or type 1234 5678.',
      html: '<!DOCTYPE html><html lang="en"><body><a href="https://app.test/verify/tok123">Confirm</a><a href="https://app.test/help">Help</a></body></html>',
    });
    const res = await rt.app.inject({ method: 'GET', url: `/_inbox/api/messages/${id}` });
    expect(res.statusCode).toBe(200);
    const message = res.json() as MessageDetail;
    expect(message).toMatchObject({
      id,
      subject: 'Confirm your address',
      from: '"Other App" <robot@other-app.test>',
      to: ['detail@example.com'],
      verification: { url: 'https://app.test/verify/tok123', code: '12345678' },
    });
    expect(message.text).toContain('Open https://app.test/verify/tok123 or type 1234 5678.');
    expect(message.html).toContain('<a href="https://app.test/help">Help</a>');
    expect(message.links).toEqual(['https://app.test/verify/tok123', 'https://app.test/help']);
    const headerNames = message.headers.map((h) => h.name);
    expect(headerNames).toEqual(
      expect.arrayContaining(['from', 'to', 'subject', 'message-id', 'date', 'mime-version']),
    );
    expect(message.headers).toContainEqual({ name: 'subject', value: 'Confirm your address' });
    expect(message.messageId).toMatch(/^<seed-[a-z0-9]+@other-app\.test>$/);
  });

  it('answers 404 JSON for an unknown id and 400 for a malformed one', async () => {
    const missing = await rt.app.inject({ method: 'GET', url: '/_inbox/api/messages/999999' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/json/);
    expect((missing.json() as ApiError).error.code).toBe('message_not_found');
    expect((missing.json() as ApiError).error.message).toMatch(/no message/i);

    for (const bad of ['abc', '0', '-1', '1.5', '1%20OR%201=1']) {
      const res = await rt.app.inject({ method: 'GET', url: `/_inbox/api/messages/${bad}` });
      expect(res.statusCode, bad).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const body = res.json() as ApiError;
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.message.length).toBeGreaterThan(0);
    }
  });

  it('GET /latest returns the newest message for an address with the link and code extracted, after a real sign-up', async () => {
    const email = 'latest-signup@example.com';
    await signUp(rt, email);
    const res = await rt.app.inject({
      method: 'GET',
      url: `/_inbox/api/latest?to=${encodeURIComponent(email)}&wait=5000`,
    });
    expect(res.statusCode).toBe(200);
    const message = res.json() as MessageDetail;
    expect(message.to).toEqual([email]);
    expect(message.subject).toBe('Confirm your email address for Mailproof');
    expect(message.verification.url).toMatch(
      /^http:\/\/mailproof\.test\/verify\/[A-Za-z0-9_-]{22,}$/,
    );
    expect(message.verification.code).toMatch(/^\d{8}$/);
    expect(message.links).toContain(message.verification.url);
    expect(message.provenance).toMatchObject({
      template: 'verify-email',
      flow: 'signup',
      attempt: 1,
    });

    // What was extracted is what the account accepts.
    const byCode = await rt.app.inject({
      method: 'POST',
      url: '/api/verify',
      payload: { email, code: message.verification.code },
    });
    expect(byCode.json()).toEqual({ status: 'verified' });

    // The newest one wins when there are several.
    await seed(rt, { to: email, subject: 'Later note', text: 'no link here' });
    const newer = await rt.app.inject({
      method: 'GET',
      url: `/_inbox/api/latest?to=${encodeURIComponent(email)}`,
    });
    expect((newer.json() as MessageDetail).subject).toBe('Later note');
    expect((newer.json() as MessageDetail).verification).toEqual({ url: null, code: null });
  });

  it('the extracted link verifies the address too', async () => {
    const email = 'latest-link@example.com';
    await signUp(rt, email);
    const message = await rt.mailTo(email);
    const token = new URL(message.verification.url ?? '').pathname.split('/').pop();
    const res = await rt.app.inject({ method: 'POST', url: '/api/verify', payload: { token } });
    expect(res.json()).toEqual({ status: 'verified' });
  });

  it('GET /latest with wait resolves as soon as the message arrives', async () => {
    const email = 'waiting@example.com';
    const inbox = rt.inbox;
    if (!inbox) throw new Error('no inbox');
    const listenersBefore = inbox.events.listenerCount('message');
    const started = Date.now();
    const pending = rt.app.inject({
      method: 'GET',
      url: `/_inbox/api/latest?to=${encodeURIComponent(email)}&wait=2000`,
    });
    // The request is waiting before the sign-up happens.
    const deadline = Date.now() + 1000;
    while (inbox.events.listenerCount('message') === listenersBefore && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(inbox.events.listenerCount('message')).toBe(listenersBefore + 1);
    expect(inbox.latestFor(email)).toBeNull();

    await signUp(rt, email);
    const res = await pending;
    const elapsed = Date.now() - started;
    expect(res.statusCode).toBe(200);
    const message = res.json() as MessageDetail;
    expect(message.to).toEqual([email]);
    expect(message.verification.code).toMatch(/^\d{8}$/);
    expect(elapsed).toBeLessThan(1500);
    // The waiter cleaned up after itself.
    expect(inbox.events.listenerCount('message')).toBe(listenersBefore);
  });

  it('GET /latest for an address nobody wrote to answers 404 after the wait', async () => {
    const started = Date.now();
    const res = await rt.app.inject({
      method: 'GET',
      url: '/_inbox/api/latest?to=nobody%40example.com&wait=100',
    });
    const elapsed = Date.now() - started;
    expect(res.statusCode).toBe(404);
    expect((res.json() as ApiError).error.code).toBe('message_not_found');
    expect(elapsed).toBeGreaterThanOrEqual(90);
    expect(elapsed).toBeLessThan(1000);

    const noWait = await rt.app.inject({
      method: 'GET',
      url: '/_inbox/api/latest?to=nobody%40example.com',
    });
    expect(noWait.statusCode).toBe(404);
  });

  it('GET /latest ignores messages to other addresses while waiting', async () => {
    const pending = rt.app.inject({
      method: 'GET',
      url: '/_inbox/api/latest?to=patient%40example.com&wait=300',
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await seed(rt, { to: 'impatient@example.com', subject: 'Not yours', text: 'x' });
    await seed(rt, { to: 'xpatient@example.com', subject: 'Not yours either', text: 'x' });
    const res = await pending;
    expect(res.statusCode).toBe(404);
  });

  it('GET /latest rejects a missing address and an out-of-range wait', async () => {
    const noTo = await rt.app.inject({ method: 'GET', url: '/_inbox/api/latest' });
    expect(noTo.statusCode).toBe(400);
    expect((noTo.json() as ApiError).error.code).toBe('invalid_request');
    const tooLong = await rt.app.inject({
      method: 'GET',
      url: '/_inbox/api/latest?to=a%40example.com&wait=600000',
    });
    expect(tooLong.statusCode).toBe(400);
  });

  it('DELETE /messages/:id removes one message', async () => {
    const keep = await seed(rt, { to: 'del@example.com', subject: 'Keep', text: 'x' });
    const drop = await seed(rt, { to: 'del@example.com', subject: 'Drop', text: 'x' });

    const res = await rt.app.inject({ method: 'DELETE', url: `/_inbox/api/messages/${drop}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ deleted: 1 });
    expect((await listMessages(rt)).map((m) => m.id)).toEqual([keep]);
    const gone = await rt.app.inject({ method: 'GET', url: `/_inbox/api/messages/${drop}` });
    expect(gone.statusCode).toBe(404);

    const again = await rt.app.inject({ method: 'DELETE', url: `/_inbox/api/messages/${drop}` });
    expect(again.statusCode).toBe(404);
    expect((again.json() as ApiError).error.code).toBe('message_not_found');
    const bad = await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/messages/nope' });
    expect(bad.statusCode).toBe(400);
  });

  it('DELETE /messages removes them all', async () => {
    await seed(rt, { to: 'all1@example.com', subject: 'One', text: 'x' });
    await seed(rt, { to: 'all2@example.com', subject: 'Two', text: 'x' });
    await seed(rt, { to: 'all3@example.com', subject: 'Three', text: 'x' });

    const res = await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/messages' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ deleted: 3 });
    expect(await listMessages(rt)).toEqual([]);
    expect(rt.inbox?.count()).toBe(0);

    const empty = await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/messages' });
    expect(empty.json()).toEqual({ deleted: 0 });
  });
});

describe('inbox pages', () => {
  let rt: TestRuntime;
  let id: number;
  let code: string;
  let url: string;
  const email = 'pages@example.com';

  beforeAll(async () => {
    rt = await createTestRuntime();
    await signUp(rt, email);
    const message = await rt.mailTo(email);
    id = message.id;
    code = message.verification.code ?? '';
    url = message.verification.url ?? '';
    expect(code).toMatch(/^\d{8}$/);
    expect(url).toMatch(/^http:\/\/mailproof\.test\/verify\//);
  });

  afterAll(async () => {
    await rt?.close();
  });

  it('the inbox page lists the message by subject and recipient', async () => {
    const res = await rt.app.inject({ method: 'GET', url: '/_inbox' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Confirm your email address for Mailproof');
    expect(res.body).toContain(email);
    expect(res.body).toContain(`href="/_inbox/messages/${id}"`);
    expect(res.body).toMatch(/Unread: /);
  });

  it('the inbox page searches with ?q= and escapes what it shows', async () => {
    await seed(rt, {
      to: 'xss@example.com',
      subject: '<script>alert(1)</script> offer',
      text: 'A hostile subject.',
    });
    const found = await rt.app.inject({ method: 'GET', url: '/_inbox?q=offer' });
    expect(found.statusCode).toBe(200);
    expect(found.body).toContain('&lt;script>alert(1)&lt;/script> offer');
    expect(found.body).not.toContain('<script>alert(1)</script>');
    expect(found.body).not.toContain('Confirm your email address for Mailproof');

    const none = await rt.app.inject({ method: 'GET', url: '/_inbox?q=zzzz-nothing' });
    expect(none.body).toContain('No message matches your search.');
  });

  it('the message page shows the verification link and code and frames the HTML in a sandbox', async () => {
    const res = await rt.app.inject({ method: 'GET', url: `/_inbox/messages/${id}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Confirm your email address for Mailproof');
    expect(res.body).toMatch(
      new RegExp(`<a href="${escapeRegExp(url)}" class="verification-link">`),
    );
    expect(res.body).toContain(`<code class="verification-code">${code}</code>`);
    const iframe = /<iframe\b[^>]*>/.exec(res.body)?.[0] ?? '';
    expect(iframe).toContain(`src="/_inbox/messages/${id}/html"`);
    // A sandbox that allows nothing but opening links in a new tab: no scripts, no same-origin,
    // no forms, no navigating the inbox page itself.
    expect(/\ssandbox="([^"]*)"/.exec(iframe)?.[1]?.split(/\s+/).sort()).toEqual([
      'allow-popups',
      'allow-popups-to-escape-sandbox',
    ]);
    // The text part and the headers are shown too.
    expect(res.body).toContain('<pre class="message-text">');
    expect(res.body).toMatch(/<th scope="row">message-id<\/th>/);

    // Opening it marks it read.
    const listed = await listMessages(rt, `?to=${encodeURIComponent(email)}`);
    expect(listed[0]?.read).toBe(true);
  });

  it('the HTML route serves the message under a sandboxing CSP', async () => {
    const res = await rt.app.inject({ method: 'GET', url: `/_inbox/messages/${id}/html` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy'] ?? '');
    const directives = csp.split(';').map((d) => d.trim());
    expect(directives).toContain('sandbox allow-popups allow-popups-to-escape-sandbox');
    expect(directives).toContain("default-src 'none'");
    expect(csp).not.toMatch(/script-src|allow-scripts|allow-same-origin|allow-top/);
    // The email as stored, with links sent to a new tab: <base target> first in its head.
    const stored = rt.inbox?.get(id)?.html ?? '';
    expect(res.body.replace('<base target="_blank">', '')).toBe(stored);
    expect(res.body).toMatch(/<head[^>]*><base target="_blank">/);
    expect(res.body).toContain('<html lang="en"');
  });

  it('the raw route downloads the source as message/rfc822', async () => {
    const res = await rt.app.inject({ method: 'GET', url: `/_inbox/messages/${id}/raw` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^message\/rfc822/);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="message-${id}.eml"`);
    expect(res.rawPayload.equals(rt.inbox?.raw(id) ?? Buffer.alloc(0))).toBe(true);
    expect(res.body).toMatch(/^MIME-Version: 1\.0\r$/m);
    expect(res.body).toMatch(/^Message-ID: <[^>]+@mailproof\.test>\r$/m);
  });

  it('unknown and malformed message ids are not found on the pages', async () => {
    for (const path of [
      '/_inbox/messages/999999',
      '/_inbox/messages/999999/html',
      '/_inbox/messages/999999/raw',
    ]) {
      const res = await rt.app.inject({ method: 'GET', url: path });
      expect(res.statusCode, path).toBe(404);
    }
    const bad = await rt.app.inject({ method: 'GET', url: '/_inbox/messages/abc' });
    expect(bad.statusCode).toBeGreaterThanOrEqual(400);
    expect(bad.statusCode).toBeLessThan(500);
  });

  // Last in this block: it empties the inbox.
  it('deletes one message, then all of them, from the pages, and says so each time', async () => {
    await signUp(rt, 'pages-two@example.com');
    await signUp(rt, 'pages-three@example.com');
    const target = await rt.mailTo('pages-two@example.com');
    await rt.mailTo('pages-three@example.com');
    const jar: Jar = {};
    const view = await rt.app.inject({ url: `/_inbox/messages/${target.id}` });
    remember(view, jar);
    const csrf = csrfOf(view.body);
    const listPage = async () => {
      const res = await rt.app.inject({ url: '/_inbox', headers: { cookie: cookieHeader(jar) } });
      remember(res, jar);
      return res.body;
    };

    const deleted = await postForm(
      rt,
      `/_inbox/messages/${target.id}/delete`,
      { _csrf: csrf },
      jar,
    );
    expect(deleted.statusCode).toBe(303);
    expect(deleted.headers.location).toBe('/_inbox');
    expect(rt.inbox?.get(target.id)).toBeNull();
    expect(await listPage()).toContain('Message deleted.');
    // The flash is shown once.
    expect(await listPage()).not.toContain('Message deleted.');
    await postForm(rt, `/_inbox/messages/${target.id}/delete`, { _csrf: csrf }, jar);
    expect(await listPage()).toContain('That message had already been deleted.');

    const left = rt.inbox?.list({ limit: 500 }).length ?? 0;
    expect(left).toBeGreaterThan(1);
    const all = await postForm(rt, '/_inbox/delete-all', { _csrf: csrf }, jar);
    expect(all.statusCode).toBe(303);
    expect(rt.inbox?.list({ limit: 500 })).toEqual([]);
    expect(await listPage()).toContain(`All messages deleted (${left} messages).`);
    await postForm(rt, '/_inbox/delete-all', { _csrf: csrf }, jar);
    expect(await listPage()).toContain('The inbox was already empty.');
    // With JavaScript, "Delete all" asks first.
    const script = await rt.app.inject({ url: '/static/inbox.js' });
    expect(script.body).toContain("window.confirm('Delete every message in the inbox?')");
  });
});

describe('inbox disabled', () => {
  let rt: TestRuntime;
  const sent: string[] = [];

  beforeAll(async () => {
    const transport: MailTransport = {
      name: 'recording',
      async send(email) {
        sent.push(email.to);
      },
      async close() {},
    };
    rt = await createTestRuntime({ env: { INBOX_ENABLED: 'false' }, transport });
  });

  afterAll(async () => {
    await rt?.close();
  });

  it('serves no /_inbox route at all', async () => {
    expect(rt.inbox).toBeNull();
    for (const url of [
      '/_inbox',
      '/_inbox/messages/1',
      '/_inbox/messages/1/html',
      '/_inbox/messages/1/raw',
    ]) {
      const res = await rt.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
    }
    for (const url of [
      '/_inbox/api/messages',
      '/_inbox/api/messages/1',
      '/_inbox/api/latest?to=a%40example.com',
    ]) {
      const res = await rt.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect((res.json() as ApiError).error.code).toBe('not_found');
    }
    const del = await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/messages' });
    expect(del.statusCode).toBe(404);
  });
});

describe('extractLinks', () => {
  it('takes absolute http(s) links from href attributes, decoding entities', () => {
    const html = `
      <a href="https://app.test/verify/abc?x=1&amp;y=2">Confirm</a>
      <a href='http://app.test/single'>single quotes</a>
      <a HREF = "https://app.test/spaced">spaced</a>
      <a href="mailto:help@app.test">mail</a>
      <a href="/relative/path">relative</a>
      <a href="#top">anchor</a>
      <a href="javascript:alert(1)">js</a>`;
    expect(extractLinks(html, null)).toEqual([
      'https://app.test/verify/abc?x=1&y=2',
      'http://app.test/single',
      'https://app.test/spaced',
    ]);
  });

  it('takes links from the text, without trailing punctuation or brackets', () => {
    const text =
      'Open https://app.test/a. Or (https://app.test/b) or [https://app.test/c] or <https://app.test/d>, or https://app.test/e?x=1;';
    expect(extractLinks(null, text)).toEqual([
      'https://app.test/a',
      'https://app.test/b',
      'https://app.test/c',
      'https://app.test/d',
      'https://app.test/e?x=1',
    ]);
  });

  it('merges links from both parts without duplicates', () => {
    expect(
      extractLinks(
        '<a href="https://app.test/verify/t1">x</a><a href="https://app.test/other">y</a>',
        'Confirm [https://app.test/verify/t1] or go to https://app.test/more',
      ),
    ).toEqual(['https://app.test/verify/t1', 'https://app.test/other', 'https://app.test/more']);
    expect(extractLinks(null, null)).toEqual([]);
  });
});

describe('extractVerification', () => {
  it('finds the verification link among other links by its path', () => {
    const links = [
      'https://app.test/',
      'https://app.test/help?next=/verify/',
      'https://app.test/verifying-things',
      'https://app.test/verify/tok_ABC-123',
      'https://app.test/contact/confirm/tok2',
    ];
    expect(extractVerification(links, null).url).toBe('https://app.test/verify/tok_ABC-123');
    expect(extractVerification(['https://app.test/reset?token=x'], null).url).toBe(
      'https://app.test/reset?token=x',
    );
    expect(extractVerification(['https://app.test/', 'not a url'], null).url).toBeNull();
  });

  it('finds an 8-digit code written with or without a space (or hyphen) in the middle', () => {
    expect(extractVerification([], 'Your code: 48213907').code).toBe('48213907');
    expect(extractVerification([], 'Or enter this code:\n\n4821 3907\n\nThanks').code).toBe(
      '48213907',
    );
    expect(extractVerification([], 'Code 4821-3907.').code).toBe('48213907');
  });

  it('finds no code in a URL, a date, a time or a longer number', () => {
    const none = [
      'Open https://app.test/verify/12345678 to confirm.',
      'Open https://app.test/orders?id=1234 5678',
      'Sent on 2026-01-15 at 12:00.',
      'Sent on 2026-01-15T12:00:00Z.',
      'Order number 123456789 is on its way.',
      'Call 0123456789 today.',
      'Amount: 1234.5678 EUR',
      'Reference 12/34/5678',
      'No digits at all.',
    ];
    for (const text of none) {
      expect(extractVerification([], text).code, text).toBeNull();
    }
  });

  it('finds the code next to a URL and a date in the same message', () => {
    const text =
      'On 2026-01-15 you signed up. Open https://app.test/verify/87654321 or type 1234 5678.';
    expect(extractVerification(['https://app.test/verify/87654321'], text)).toEqual({
      url: 'https://app.test/verify/87654321',
      code: '12345678',
    });
  });

  it('finds the code in a real rendered verification message', async () => {
    const rt = await createTestRuntime();
    try {
      await signUp(rt, 'rendered@example.com');
      const message = await rt.mailTo('rendered@example.com');
      const recomputed = extractVerification(
        extractLinks(message.html, message.text),
        message.text,
      );
      expect(recomputed).toEqual(message.verification);
      expect(recomputed.code).toMatch(/^\d{8}$/);
      expect(message.text).toContain(
        `${recomputed.code?.slice(0, 4)} ${recomputed.code?.slice(4)}`,
      );
    } finally {
      await rt.close();
    }
  });
});

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
