// §5: the inbox listens on a plain SMTP port so other applications can use it as their
// development mail catcher. It stores what it receives and relays nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Catcher, startSmtpCatcher } from '../../src/inbox/smtp.ts';
import { type InboxStore, openInboxStore } from '../../src/inbox/store.ts';

const MAX_BYTES = 50_000;

let dataDir: string;
let store: InboxStore;
let catcher: Catcher;

function transport() {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: catcher.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 10_000,
  });
}

/** Talks SMTP by hand and returns every reply line, for checks nodemailer would hide. */
async function rawSmtp(commands: string[]): Promise<string[]> {
  const socket = net.connect(catcher.port, '127.0.0.1');
  socket.setEncoding('utf8');
  const replies: string[] = [];
  let buffer = '';
  let waiting: (() => void) | null = null;
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let index = buffer.indexOf('\r\n');
    while (index >= 0) {
      const line = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      replies.push(line);
      // A final reply line has a space after the code; "250-" lines continue.
      if (/^\d{3} /.test(line)) waiting?.();
      index = buffer.indexOf('\r\n');
    }
  });
  const nextReply = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply; got ${replies.join(' | ')}`)),
        5000,
      );
      waiting = () => {
        clearTimeout(timer);
        waiting = null;
        resolve();
      };
    });
  await nextReply(); // greeting
  for (const command of commands) {
    const reply = nextReply();
    socket.write(`${command}\r\n`);
    await reply;
  }
  socket.end();
  return replies;
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'mailproof-catcher-'));
  store = openInboxStore(dataDir, { retain: 1000 });
  catcher = await startSmtpCatcher(store, {
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: MAX_BYTES,
  });
});

afterAll(async () => {
  await catcher?.close();
  store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  store.deleteAll();
});

describe('SMTP catcher', () => {
  it('listens on the random port it was given', () => {
    expect(catcher.port).toBeGreaterThan(0);
    expect(catcher.port).toBeLessThan(65536);
  });

  it('stores a message from another app with from, to, subject, text, html and headers', async () => {
    const info = await transport().sendMail({
      from: 'Other App <robot@other-app.test>',
      to: 'Jane Doe <jane@example.com>',
      subject: 'Your invoice #42 — ready',
      text: 'Hello Jane,\nyour invoice is at https://other-app.test/invoices/42 .\n',
      html: '<p>Hello Jane,</p><p>Your invoice is <a href="https://other-app.test/invoices/42">here</a>.</p>',
      messageId: '<invoice-42@other-app.test>',
      headers: { 'X-Campaign': 'invoices' },
    });
    expect(info.accepted).toEqual(['jane@example.com']);
    expect(info.rejected).toEqual([]);
    expect(info.response).toMatch(/^250/);

    const list = store.list();
    expect(list).toHaveLength(1);
    const summary = list[0];
    expect(summary?.subject).toBe('Your invoice #42 — ready');

    const message = store.get(summary?.id ?? 0);
    expect(message).not.toBeNull();
    if (!message) return;
    expect(message.from).toBe('"Other App" <robot@other-app.test>');
    expect(message.to).toEqual(['jane@example.com']);
    expect(message.subject).toBe('Your invoice #42 — ready');
    expect(message.messageId).toBe('<invoice-42@other-app.test>');
    expect(message.text).toContain('your invoice is at https://other-app.test/invoices/42');
    expect(message.html).toContain('<a href="https://other-app.test/invoices/42">here</a>');
    expect(message.links).toEqual(['https://other-app.test/invoices/42']);
    expect(message.provenance).toBeNull();
    expect(message.read).toBe(false);
    expect(message.size).toBeGreaterThan(200);
    const names = message.headers.map((h) => h.name.toLowerCase());
    expect(names).toEqual(
      expect.arrayContaining(['from', 'to', 'subject', 'message-id', 'date', 'mime-version']),
    );
    expect(message.headers).toContainEqual({ name: 'x-campaign', value: 'invoices' });

    const raw = store.raw(message.id)?.toString('utf8') ?? '';
    expect(raw).toMatch(/^Message-ID: <invoice-42@other-app\.test>\r$/m);
    expect(raw).toContain('X-Campaign: invoices');
    expect(store.latestFor('JANE@example.com')?.id).toBe(message.id);
  });

  it('stores one message for several recipients, including Cc and Bcc', async () => {
    const info = await transport().sendMail({
      from: 'robot@other-app.test',
      to: ['a@example.com', 'B@Example.com'],
      cc: 'c@example.org',
      bcc: 'hidden@example.net',
      subject: 'Team update',
      text: 'Weekly update for the whole team.',
    });
    expect(info.accepted.map((a) => String(a).toLowerCase()).sort()).toEqual(
      ['a@example.com', 'b@example.com', 'c@example.org', 'hidden@example.net'].sort(),
    );

    expect(store.count()).toBe(1);
    const message = store.list()[0];
    expect(message?.to).toEqual(
      expect.arrayContaining([
        'a@example.com',
        'b@example.com',
        'c@example.org',
        'hidden@example.net',
      ]),
    );
    expect(message?.to).toHaveLength(4);
    for (const address of [
      'a@example.com',
      'b@example.com',
      'c@example.org',
      'hidden@example.net',
    ]) {
      expect(store.latestFor(address)?.subject).toBe('Team update');
      expect(store.list({ to: address }).map((m) => m.id)).toEqual([message?.id]);
    }
    // Bcc is in the envelope only, never in the stored headers.
    const stored = store.get(message?.id ?? 0);
    expect(stored?.headers.map((h) => h.name.toLowerCase())).not.toContain('bcc');
    expect(store.raw(message?.id ?? 0)?.toString('utf8')).not.toMatch(/^Bcc:/im);
  });

  it('accepts a message with an attachment and keeps its source', async () => {
    const pdfLike = Buffer.from(`%PDF-1.4\n${'0123456789'.repeat(500)}\n%%EOF\n`);
    await transport().sendMail({
      from: 'billing@other-app.test',
      to: 'jane@example.com',
      subject: 'Invoice attached',
      text: 'Please find the invoice attached.',
      html: '<p>Please find the invoice attached.</p>',
      attachments: [
        { filename: 'invoice-42.pdf', content: pdfLike, contentType: 'application/pdf' },
        { filename: 'notes.txt', content: 'plain notes' },
      ],
    });

    const message = store.latestFor('jane@example.com');
    expect(message?.subject).toBe('Invoice attached');
    expect(message?.text?.trim()).toBe('Please find the invoice attached.');
    expect(message?.html).toContain('Please find the invoice attached.');
    const raw = store.raw(message?.id ?? 0)?.toString('utf8') ?? '';
    expect(raw).toMatch(/Content-Type: multipart\/mixed/);
    expect(raw).toMatch(/filename=invoice-42\.pdf/);
    expect(raw).toMatch(/filename=notes\.txt/);
    expect(raw).toContain(pdfLike.toString('base64').slice(0, 76));
    expect(message?.size).toBe(Buffer.byteLength(raw));
  });

  it('stores a hand-written .eml with folded headers, encoded words and quoted-printable', async () => {
    const eml = [
      'Return-Path: <newsletter@shop.test>',
      'From: =?UTF-8?Q?Caf=C3=A9_Shop?= <newsletter@shop.test>',
      'To: customer@example.com',
      'Subject: =?UTF-8?B?Q29uZmlybSB5b3VyIHN1YnNjcmlwdGlvbiDinJM=?=',
      'Date: Thu, 15 Jan 2026 12:00:00 +0000',
      'Message-ID: <sub-1@shop.test>',
      'MIME-Version: 1.0',
      'X-Long-Header: first part of a long value',
      '  continued on a second line',
      'Content-Type: multipart/alternative; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Confirm here: https://shop.test/confirm/abc123',
      'Your code is 1234 5678. Caf=C3=A9 team.',
      '--b1',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>Confirm <a href=3D"https://shop.test/confirm/abc123">here</a>.</p>',
      '--b1--',
      '',
    ].join('\r\n');
    const info = await transport().sendMail({
      envelope: { from: 'bounces@shop.test', to: ['customer@example.com'] },
      raw: eml,
    });
    expect(info.accepted).toEqual(['customer@example.com']);

    const message = store.latestFor('customer@example.com');
    expect(message?.from).toBe('"Café Shop" <newsletter@shop.test>');
    expect(message?.subject).toBe('Confirm your subscription ✓');
    expect(message?.messageId).toBe('<sub-1@shop.test>');
    expect(message?.text).toContain('Café team.');
    expect(message?.html).toContain('<a href="https://shop.test/confirm/abc123">');
    expect(message?.verification).toEqual({
      url: 'https://shop.test/confirm/abc123',
      code: '12345678',
    });
    expect(message?.headers).toContainEqual({
      name: 'x-long-header',
      value: expect.stringMatching(/^first part of a long value\s+continued on a second line$/),
    });
    // The stored source is byte for byte what was sent.
    expect(store.raw(message?.id ?? 0)?.toString('utf8')).toBe(eml);
  });

  it('refuses a message over the size limit with a 552 and stores nothing', async () => {
    store.deleteAll();
    const big = Buffer.alloc(MAX_BYTES + 10_000, 'a');
    const error = await transport()
      .sendMail({
        from: 'robot@other-app.test',
        to: 'jane@example.com',
        subject: 'Too big',
        text: 'See the attachment.',
        attachments: [{ filename: 'big.bin', content: big }],
      })
      .then(
        () => null,
        (e: unknown) => e as { responseCode?: number; response?: string },
      );
    expect(error).not.toBeNull();
    expect(error?.responseCode).toBe(552);
    expect(store.count()).toBe(0);
    expect(store.latestFor('jane@example.com')).toBeNull();

    // The catcher still works after refusing.
    await transport().sendMail({
      from: 'robot@other-app.test',
      to: 'jane@example.com',
      subject: 'Small one',
      text: 'Fits.',
    });
    expect(store.latestFor('jane@example.com')?.subject).toBe('Small one');
  });

  it('announces the size limit and neither AUTH nor STARTTLS', async () => {
    const replies = await rawSmtp(['EHLO client.test', 'QUIT']);
    expect(replies[0]).toMatch(/^220 /);
    expect(replies[0]).toMatch(/relays none/i);
    const ehlo = replies.filter((line) => /^250[- ]/.test(line));
    expect(ehlo.map((line) => line.slice(4))).toContain(`SIZE ${MAX_BYTES}`);
    expect(ehlo.join('\n')).not.toMatch(/AUTH/);
    expect(ehlo.join('\n')).not.toMatch(/STARTTLS/);
    expect(replies.at(-1)).toMatch(/^221 /);
  });

  it('refuses a MAIL FROM that declares a size over the limit', async () => {
    const replies = await rawSmtp([
      'EHLO client.test',
      `MAIL FROM:<robot@other-app.test> SIZE=${MAX_BYTES + 1}`,
      'QUIT',
    ]);
    const mailReply = replies.find((line) => /^\d{3} /.test(line) && !/^2[25]0 /.test(line));
    expect(mailReply).toMatch(/^552 /);
    expect(store.count()).toBe(0);
  });
});

describe('the catcher never relays', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('stores mail for outside domains and opens no connection of its own', async () => {
    const connect = vi.spyOn(net.Socket.prototype, 'connect');
    await transport().sendMail({
      from: 'robot@other-app.test',
      to: ['someone@gmail.com', 'ceo@bigcorp.example'],
      subject: 'Should stay here',
      text: 'This must not leave the machine.',
    });
    // Give a relaying server a moment to try.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const ports = connect.mock.calls.map((args) => {
      const first = args[0] as unknown;
      if (typeof first === 'number') return first;
      if (Array.isArray(first)) return (first[0] as { port?: number }).port;
      return (first as { port?: number }).port;
    });
    // Only the sending client's own connection to the catcher.
    expect(ports).toEqual([catcher.port]);

    expect(store.latestFor('someone@gmail.com')?.subject).toBe('Should stay here');
    expect(store.latestFor('ceo@bigcorp.example')?.subject).toBe('Should stay here');
    expect(store.count()).toBe(1);
  });
});
