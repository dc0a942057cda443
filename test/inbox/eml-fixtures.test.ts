// Real .eml files (test/fixtures/eml) sent through the real SMTP catcher, as another app's mail
// would arrive: what the inbox decodes, stores, shows and serves for each of them.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Catcher, startSmtpCatcher } from '../../src/inbox/smtp.ts';
import type { InboxStore, MessageDetail } from '../../src/inbox/store.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const MAX_BYTES = 8 * 1024 * 1024;

let rt: TestRuntime;
let inbox: InboxStore;
let catcher: Catcher;

/** A fixture as sent on the wire: CRLF line endings even if a checkout turned them into LF. */
function fixture(name: string): Buffer {
  const bytes = readFileSync(new URL(`../fixtures/eml/${name}`, import.meta.url));
  return Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

function send(raw: Buffer, to: string) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: catcher.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 30_000,
  });
  return transport.sendMail({ envelope: { from: 'sender@other-app.test', to: [to] }, raw });
}

/** Sends a fixture and returns what the inbox stored; the stored source is what was sent. */
async function deliver(name: string, to: string): Promise<MessageDetail> {
  const raw = fixture(name);
  const info = await send(raw, to);
  expect(info.accepted).toEqual([to]);
  const message = inbox.latestFor(to);
  if (!message) throw new Error(`${name} was not stored`);
  expect(inbox.raw(message.id)?.equals(raw)).toBe(true);
  expect(message.size).toBe(raw.length);
  return message;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const download = (id: number, index: number) =>
  rt.app.inject({ method: 'GET', url: `/_inbox/messages/${id}/attachments/${index}` });

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  if (!rt.inbox) throw new Error('the inbox is disabled in this runtime');
  inbox = rt.inbox;
  catcher = await startSmtpCatcher(inbox, {
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: MAX_BYTES,
  });
});

afterAll(async () => {
  await catcher?.close();
  await rt?.close();
});

describe('.eml fixtures through the SMTP catcher', () => {
  it('multipart/alternative: stores the text and the HTML part, no attachments', async () => {
    const message = await deliver('alternative.eml', 'dev@example.com');
    expect(message.from).toBe('"Release Bot" <bot@releases.test>');
    expect(message.subject).toBe('Release 2.4 is out');
    expect(message.messageId).toBe('<release-2.4@releases.test>');
    expect(message.text).toBe('Release 2.4 is out.\nNotes: https://releases.test/2.4\n');
    expect(message.html).toBe(
      '<!DOCTYPE html><html><body><h1>Release 2.4 is out</h1><p>Read the <a href="https://releases.test/2.4">notes</a>.</p></body></html>\n',
    );
    expect(message.links).toEqual(['https://releases.test/2.4']);
    expect(message.attachments).toEqual([]);
  });

  it('multipart/mixed: lists a PDF, a PNG and an inline cid image, each downloadable byte for byte', async () => {
    const message = await deliver('mixed-attachments.eml', 'jane@example.com');
    expect(message.subject).toBe('Your invoice and usage chart');
    expect(message.text).toBe('Hello Jane, your invoice is attached.');
    // The cid reference stays as sent; the inline part is listed with its Content-ID.
    expect(message.html).toContain('<img src="cid:logo@shop.test" alt="Shop">');
    expect(message.attachments).toEqual([
      {
        index: 0,
        filename: 'logo.png',
        contentType: 'image/png',
        size: 69,
        contentId: 'logo@shop.test',
        inline: true,
      },
      {
        index: 1,
        filename: 'facture-été.pdf',
        contentType: 'application/pdf',
        size: 584,
        contentId: null,
        inline: false,
      },
      {
        index: 2,
        filename: 'chart.png',
        contentType: 'image/png',
        size: 97,
        contentId: null,
        inline: false,
      },
    ]);

    const expected = [
      {
        sha256: '08c73335d678750a6304c2af4da19dc77ba8f0a0f9c976e0bf0100bdd56efa4b',
        magic: '\x89PNG\r\n\x1a\n',
        type: 'image/png',
        disposition: `attachment; filename="logo.png"; filename*=UTF-8''logo.png`,
      },
      {
        sha256: 'ef94ef8f539412d7436cb9074a613fda3f1bfd7e89933623bce974f711e3a3e8',
        magic: '%PDF-1.4',
        type: 'application/pdf',
        disposition: `attachment; filename="facture-ete.pdf"; filename*=UTF-8''facture-%C3%A9t%C3%A9.pdf`,
      },
      {
        sha256: '6b20cea69b82419cdfefb9b167e48c354d7bd31e52180c465d23210bbed6dedb',
        magic: '\x89PNG\r\n\x1a\n',
        type: 'image/png',
        disposition: `attachment; filename="chart.png"; filename*=UTF-8''chart.png`,
      },
    ];
    for (const [index, want] of expected.entries()) {
      const res = await download(message.id, index);
      expect(res.statusCode).toBe(200);
      expect(sha256(res.rawPayload)).toBe(want.sha256);
      expect(res.rawPayload.subarray(0, 8).toString('latin1')).toBe(want.magic);
      expect(res.rawPayload.length).toBe(message.attachments[index]?.size);
      expect(res.headers['content-type']).toBe(want.type);
      expect(res.headers['content-disposition']).toBe(want.disposition);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await download(message.id, 3)).statusCode).toBe(404);

    const page = await rt.app.inject({ url: `/_inbox/messages/${message.id}` });
    expect(page.body).toContain('>facture-été.pdf</a>');
    expect(page.body).toContain('application/pdf · 584 B');

    // In the HTML frame the inline image points at its own part, which the sandbox may load.
    const frame = await rt.app.inject({ url: `/_inbox/messages/${message.id}/html` });
    expect(frame.body).toContain(
      `<img src="/_inbox/messages/${message.id}/attachments/0" alt="Shop">`,
    );
    expect(frame.body).not.toContain('cid:logo@shop.test');
  });

  it('broken HTML: stored as sent, and its frame keeps the sandbox CSP', async () => {
    const message = await deliver('broken-html.eml', 'reader@example.com');
    expect(message.subject).toBe('Broken markup weekly');
    expect(message.html).toContain('</div></div></span>');
    expect(message.html).toContain('<script>document.title = "pwned";');
    expect(message.text).toContain('Unclosed paragraph');
    expect(message.links).toContain('https://newsletter.test/issue/9');

    const frame = await rt.app.inject({ url: `/_inbox/messages/${message.id}/html` });
    expect(frame.statusCode).toBe(200);
    const csp = String(frame.headers['content-security-policy']);
    expect(csp).toMatch(/(^|; )sandbox allow-popups allow-popups-to-escape-sandbox(;|$)/);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).not.toMatch(/script-src/);
    expect(frame.body).toContain('<script>');

    const page = await rt.app.inject({ url: `/_inbox/messages/${message.id}` });
    expect(page.statusCode).toBe(200);
    // On the page itself the message's markup is only ever escaped source text.
    expect(page.body).not.toContain('<script>document.title');
    expect(page.body).toContain('&lt;script>document.title');
  });

  it('ISO-8859-1 quoted-printable: subject, sender and text decode to UTF-8', async () => {
    const message = await deliver('iso-8859-1.eml', 'client@example.com');
    expect(message.from).toBe('"Café du Coin" <bonjour@cafe.test>');
    expect(message.subject).toBe('Votre café crème est prêt');
    expect(message.text).toBe('Bonjour,\nvotre café crème est prêt. À bientôt !\n\n');
    expect(message.snippet).toBe('Bonjour, votre café crème est prêt. À bientôt !');
    expect(inbox.list({ q: 'crème' }).map((m) => m.id)).toEqual([message.id]);
  });

  it('Windows-1252 8bit: curly quotes, dashes and the euro sign decode', async () => {
    const raw = fixture('windows-1252.eml');
    expect(raw.includes(Buffer.from([0x93]))).toBe(true); // really not UTF-8 on the wire
    const message = await deliver('windows-1252.eml', 'staff@example.com');
    expect(message.subject).toBe('“Quarterly” numbers – it’s € time');
    expect(message.text).toBe('He said “ship it” – it’s done. Budget: €1 200.\n\n');
  });

  it('ISO-2022-JP: a Japanese subject, Shift_JIS sender name and body decode', async () => {
    const message = await deliver('iso-2022-jp.eml', 'tanaka@example.jp');
    expect(message.from).toBe('"山田太郎" <yamada@example.jp>');
    expect(message.subject).toBe('会議のお知らせ');
    expect(message.text).toBe(
      '田中様\n\n明日の会議は午後三時からです。\nよろしくお願いします。\n\n',
    );
    const page = await rt.app.inject({ url: `/_inbox/messages/${message.id}` });
    expect(page.body).toContain('<h1 id="message-title">会議のお知らせ</h1>');
  });
});

describe('a very large message', () => {
  /** A multipart message carrying `payload` as a base64 attachment. */
  function largeMessage(payload: Buffer, to: string): Buffer {
    const head = [
      'From: exports@other-app.test',
      `To: ${to}`,
      'Subject: Your data export',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="export-boundary"',
      '',
      '--export-boundary',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Your export is attached.',
      '--export-boundary',
      'Content-Type: application/zip; name="export.zip"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="export.zip"',
      '',
      '',
    ].join('\r\n');
    const body = payload.toString('base64').replace(/.{76}/g, '$&\r\n');
    return Buffer.from(`${head}${body}\r\n--export-boundary--\r\n`);
  }

  it('under the size limit: stored whole, and the attachment downloads byte-identical', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const raw = largeMessage(payload, 'export@example.com');
    expect(raw.length).toBeGreaterThan(6_900_000);
    expect(raw.length).toBeLessThan(MAX_BYTES);

    const info = await send(raw, 'export@example.com');
    expect(info.accepted).toEqual(['export@example.com']);
    const message = inbox.latestFor('export@example.com');
    if (!message) throw new Error('the large message was not stored');
    expect(message.size).toBe(raw.length);
    expect(inbox.raw(message.id)?.equals(raw)).toBe(true);
    expect(message.attachments).toEqual([
      {
        index: 0,
        filename: 'export.zip',
        contentType: 'application/zip',
        size: payload.length,
        contentId: null,
        inline: false,
      },
    ]);

    const res = await download(message.id, 0);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.headers['content-length']).toBe(String(payload.length));
    expect(sha256(res.rawPayload)).toBe(sha256(payload));
  });

  it('over the size limit: answered 552 and nothing is stored', async () => {
    const raw = largeMessage(randomBytes(6 * 1024 * 1024 + 512 * 1024), 'too-big@example.com');
    expect(raw.length).toBeGreaterThan(MAX_BYTES);
    const before = inbox.count();

    const error = await send(raw, 'too-big@example.com').then(
      () => null,
      (e: unknown) => e as { responseCode?: number },
    );
    expect(error?.responseCode).toBe(552);
    expect(inbox.count()).toBe(before);
    expect(inbox.latestFor('too-big@example.com')).toBeNull();
  });
});
