// §3/§6 The signed webhook for accepted contact messages: a real HTTP endpoint on loopback
// receives one POST per accepted message, signed with HMAC-SHA256, retried through the outbox
// when the endpoint fails, and delivered once.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AcceptedContactEvent } from '../../src/contact/contact.ts';
import { verifyWebhookSignature } from '../../src/events/webhook.ts';
import {
  address,
  apiConfirm,
  contactOf,
  csrfOf,
  getPage,
  type Jar,
  OWNER,
  outboxIdle,
  pathOf,
  postForm,
  sleep,
  submit,
  tokenOf,
} from '../support/contact.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const SECRET = 'whsec-test-secret-0123456789abcdef';
const HOOK_PATH = '/hooks/mailproof';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

interface Endpoint {
  url: string;
  received: Received[];
  /** Status codes for the next requests, in order; 200 once it runs out. */
  plan: number[];
  close(): Promise<void>;
}

async function startEndpoint(): Promise<Endpoint> {
  const received: Received[] = [];
  const plan: number[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = plan.shift() ?? 200;
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        status,
      });
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(status === 200 ? 'ok' : 'not now');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${HOOK_PATH}`,
    received,
    plan,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function fields(label: string) {
  return { name: `Webhook ${label}`, email: address(label), message: `Message from ${label}` };
}

function header(received: Received, name: string): string {
  const value = received.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

function signatureParts(received: Received): { t: number; v1: string } {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header(received, 'Mailproof-Signature'));
  if (!match?.[1] || !match[2]) throw new Error('malformed Mailproof-Signature');
  return { t: Number(match[1]), v1: match[2] };
}

async function webhookRows(rt: TestRuntime) {
  return rt.db.kysely
    .selectFrom('outbox')
    .selectAll()
    .where('kind', '=', 'webhook')
    .orderBy('created_at')
    .execute();
}

describe('the contact.accepted webhook', () => {
  let rt: TestRuntime;
  let endpoint: Endpoint;
  const events: AcceptedContactEvent[] = [];

  /** The requests the endpoint received for the message from `email`. */
  function requestsFor(email: string): Received[] {
    return endpoint.received.filter((r) => {
      try {
        return (JSON.parse(r.body) as { data?: { email?: string } }).data?.email === email;
      } catch {
        return false;
      }
    });
  }

  async function waitForRequests(email: string, count: number): Promise<Received[]> {
    await vi.waitFor(() => expect(requestsFor(email).length).toBeGreaterThanOrEqual(count), {
      timeout: 5000,
      interval: 20,
    });
    return requestsFor(email);
  }

  /** The contact row and the outbox rows whose deliveries the endpoint saw for it. */
  async function rowFor(email: string) {
    const contact = await contactOf(rt, email);
    const deliveryIds = new Set(requestsFor(email).map((r) => header(r, 'Mailproof-Delivery')));
    const rows = (await webhookRows(rt)).filter((row) => deliveryIds.has(row.id));
    return { contact, rows };
  }

  beforeAll(async () => {
    endpoint = await startEndpoint();
    rt = await createTestRuntime({
      env: { CONTACT_WEBHOOK_URL: endpoint.url, CONTACT_WEBHOOK_SECRET: SECRET },
    });
    rt.ctx.events.on('contact.accepted', (event: AcceptedContactEvent) => events.push(event));
  });
  afterAll(async () => {
    await rt.close();
    await endpoint.close();
  });
  beforeEach(async () => {
    rt.limits.reset();
    await outboxIdle(rt);
    endpoint.plan.length = 0;
  });

  it('POSTs one signed event per accepted message, the same data as the in-process hook', async () => {
    const input = fields('signed');
    const mail = await submit(rt, input);
    await outboxIdle(rt);
    // Pending: no webhook yet.
    const pendingContact = await contactOf(rt, input.email);
    const queuedForIt = (await webhookRows(rt)).filter((row) =>
      (row.payload ?? '').includes(pendingContact.id),
    );
    expect(queuedForIt).toHaveLength(0);
    expect(requestsFor(input.email)).toHaveLength(0);

    const path = pathOf(mail.verification.url ?? '');
    const jar: Jar = {};
    const page = await getPage(rt, path, jar);
    const rowsBefore = (await webhookRows(rt)).length;
    const acceptedAt = rt.clock.now();
    const accepted = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
    expect(accepted.statusCode).toBe(200);
    expect(accepted.body).toContain('Thank you');

    const [request] = await waitForRequests(input.email, 1);
    if (!request) throw new Error('no webhook request');
    expect(request.method).toBe('POST');
    expect(request.url).toBe(HOOK_PATH);
    expect(header(request, 'Content-Type')).toBe('application/json');
    expect(header(request, 'Mailproof-Event')).toBe('contact.accepted');
    expect(header(request, 'User-Agent')).toMatch(/^Mailproof-Webhook\//);

    // The signature, checked by the receiver's helper...
    const signature = header(request, 'Mailproof-Signature');
    const { t, v1 } = signatureParts(request);
    expect(t).toBe(Math.floor(rt.clock.now() / 1000));
    expect(verifyWebhookSignature(SECRET, request.body, signature, t)).toBe(true);
    expect(
      verifyWebhookSignature(SECRET, request.body, signature, Math.floor(Date.now() / 1000)),
    ).toBe(Math.abs(Math.floor(Date.now() / 1000) - t) <= 300);
    // ...and recomputed by hand: hex HMAC-SHA256(secret, "<t>.<body>").
    const expected = createHmac('sha256', SECRET).update(`${t}.${request.body}`).digest('hex');
    expect(v1).toBe(expected);
    // A wrong secret, a changed body, a replay outside the tolerance or a missing part fail.
    expect(verifyWebhookSignature(`${SECRET}x`, request.body, signature, t)).toBe(false);
    expect(verifyWebhookSignature(SECRET, `${request.body} `, signature, t)).toBe(false);
    expect(verifyWebhookSignature(SECRET, request.body, signature, t + 301)).toBe(false);
    expect(verifyWebhookSignature(SECRET, request.body, `t=${t}`, t)).toBe(false);
    expect(verifyWebhookSignature(SECRET, request.body, `t=${t + 1},v1=${v1}`, t)).toBe(false);

    const contact = await contactOf(rt, input.email);
    const event = events.find((e) => e.id === contact.id);
    expect(event).toEqual({
      id: contact.id,
      name: input.name,
      email: input.email,
      message: input.message,
      acceptedAt: new Date(acceptedAt).toISOString(),
    });
    const rows = await webhookRows(rt);
    expect(rows).toHaveLength(rowsBefore + 1);
    const row = rows.at(-1);
    expect(JSON.parse(request.body)).toEqual({
      id: row?.id,
      type: 'contact.accepted',
      createdAt: new Date(acceptedAt).toISOString(),
      data: event,
    });
    expect(header(request, 'Mailproof-Delivery')).toBe(row?.id);

    await outboxIdle(rt);
    const [sent] = (await webhookRows(rt)).filter((r) => r.id === row?.id);
    expect(sent).toMatchObject({
      kind: 'webhook',
      to_address: endpoint.url,
      template: 'contact.accepted',
      status: 'sent',
      attempts: 1,
      last_error: null,
      payload: null,
    });

    // A second confirmation fires nothing more.
    const again = await postForm(rt, path, { _csrf: csrfOf(page.body) }, jar);
    expect(again.body).toContain('This message was already submitted');
    expect((await apiConfirm(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
      status: 'already_accepted',
    });
    await outboxIdle(rt);
    await sleep(150);
    expect(requestsFor(input.email)).toHaveLength(1);
    expect(await webhookRows(rt)).toHaveLength(rowsBefore + 1);
    expect(events.filter((e) => e.id === contact.id)).toHaveLength(1);
  });

  it('retries through the outbox when the endpoint answers 500, and delivers once', async () => {
    const input = fields('retry');
    const mail = await submit(rt, input);
    endpoint.plan.push(500);
    expect((await apiConfirm(rt, { token: tokenOf(mail.verification.url) })).json()).toEqual({
      status: 'accepted',
    });
    const [first] = await waitForRequests(input.email, 1);
    expect(first?.status).toBe(500);

    await vi.waitFor(
      async () => {
        const { rows } = await rowFor(input.email);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({
          status: 'pending',
          attempts: 1,
          last_error: 'webhook: HTTP 500',
          locked_by: null,
        });
      },
      { timeout: 5000, interval: 20 },
    );
    // The retry waits for its backoff; the test clock moves only when told.
    await sleep(150);
    expect(requestsFor(input.email)).toHaveLength(1);
    rt.clock.advance(5000);
    rt.worker?.wake();

    const requests = await waitForRequests(input.email, 2);
    expect(requests.map((r) => r.status)).toEqual([500, 200]);
    const [failed, delivered] = requests;
    if (!failed || !delivered) throw new Error('unreachable');
    // The same delivery, the same event: receivers can deduplicate on Mailproof-Delivery.
    expect(header(delivered, 'Mailproof-Delivery')).toBe(header(failed, 'Mailproof-Delivery'));
    expect(delivered.body).toBe(failed.body);
    for (const request of requests) {
      const { t } = signatureParts(request);
      expect(
        verifyWebhookSignature(SECRET, request.body, header(request, 'Mailproof-Signature'), t),
      ).toBe(true);
    }
    expect(signatureParts(delivered).t).toBe(Math.floor(rt.clock.now() / 1000));

    await outboxIdle(rt);
    const { rows } = await rowFor(input.email);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'sent', attempts: 2, last_error: null });
    expect(rows[0]?.id).toBe(header(delivered, 'Mailproof-Delivery'));

    rt.clock.advance(60_000);
    rt.worker?.wake();
    await sleep(200);
    expect(requestsFor(input.email)).toHaveLength(2);
    // The owner's email went out once, unaffected by the webhook's failure.
    await rt.mailTo(OWNER);
    await outboxIdle(rt);
    const deliveries = (rt.inbox?.list({ to: OWNER, limit: 500 }) ?? []).filter((m) =>
      m.subject.endsWith(input.name),
    );
    expect(deliveries).toHaveLength(1);
  });

  it('dead-letters the delivery when the endpoint answers 410 Gone, without retrying', async () => {
    const input = fields('gone');
    const mail = await submit(rt, input);
    endpoint.plan.push(410);
    await apiConfirm(rt, { token: tokenOf(mail.verification.url) });
    await waitForRequests(input.email, 1);
    await vi.waitFor(
      async () => {
        const { rows } = await rowFor(input.email);
        expect(rows[0]).toMatchObject({
          status: 'dead',
          attempts: 1,
          last_error: 'webhook: HTTP 410',
        });
      },
      { timeout: 5000, interval: 20 },
    );
    rt.clock.advance(60_000);
    rt.worker?.wake();
    await sleep(200);
    expect(requestsFor(input.email)).toHaveLength(1);
  });

  it('two confirms racing queue one webhook and fire it once', async () => {
    const input = fields('race');
    const mail = await submit(rt, input);
    const token = tokenOf(mail.verification.url);
    const rowsBefore = (await webhookRows(rt)).length;
    const results = await Promise.all([apiConfirm(rt, { token }), apiConfirm(rt, { token })]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(results.map((r) => r.json().status).sort()).toEqual(['accepted', 'already_accepted']);
    await waitForRequests(input.email, 1);
    await outboxIdle(rt);
    await sleep(150);
    expect(await webhookRows(rt)).toHaveLength(rowsBefore + 1);
    const { rows, contact } = await rowFor(input.email);
    expect(rows).toHaveLength(1);
    expect(requestsFor(input.email)).toHaveLength(1);
    expect(events.filter((e) => e.id === contact.id)).toHaveLength(1);
  });

  it('a message confirmed by its code fires the webhook too', async () => {
    const input = fields('bycode');
    const mail = await submit(rt, input);
    const res = await apiConfirm(rt, { email: input.email, code: mail.verification.code });
    expect(res.json()).toEqual({ status: 'accepted' });
    const [request] = await waitForRequests(input.email, 1);
    const body = JSON.parse(request?.body ?? '{}') as { type: string; data: AcceptedContactEvent };
    expect(body.type).toBe('contact.accepted');
    expect(body.data).toMatchObject({
      name: input.name,
      email: input.email,
      message: input.message,
    });
  });
});
