// SPEC: the message view lists a message's attachments and each one downloads, safely: the
// bytes as sent, never rendered on the inbox's origin, behind INBOX_AUTH like the rest.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attachmentDisposition, downloadType, humanSize } from '../../src/inbox/attachments.tsx';
import { type AttachmentInfo, safeFilename } from '../../src/inbox/store.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const AUTH = { authorization: `Basic ${Buffer.from('dev:inbox-password').toString('base64')}` };

interface Part {
  type: string;
  content: Buffer | string;
  /** The whole Content-Disposition value; omitted for a part without one. */
  disposition?: string;
  contentId?: string;
}

/** A multipart/mixed message with a text part and the given parts, base64-encoded. */
function message(subject: string, parts: Part[]): Buffer {
  const lines = [
    'From: robot@other-app.test',
    'To: jane@example.com',
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="part-boundary"',
    '',
    '--part-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `${subject}: see the attachments.`,
  ];
  for (const part of parts) {
    lines.push(
      '--part-boundary',
      `Content-Type: ${part.type}`,
      'Content-Transfer-Encoding: base64',
    );
    if (part.disposition) lines.push(`Content-Disposition: ${part.disposition}`);
    if (part.contentId) lines.push(`Content-ID: <${part.contentId}>`);
    const base64 = Buffer.from(part.content).toString('base64');
    lines.push('', ...(base64.match(/.{1,76}/g) ?? []));
  }
  lines.push('--part-boundary--', '');
  return Buffer.from(lines.join('\r\n'));
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n');
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

describe('attachments', () => {
  let rt: TestRuntime;

  async function ingest(raw: Buffer): Promise<number> {
    if (!rt.inbox) throw new Error('the inbox is disabled in this runtime');
    return rt.inbox.ingest(raw, { from: 'robot@other-app.test', to: ['jane@example.com'] });
  }

  const get = (url: string, headers: Record<string, string> = AUTH) =>
    rt.app.inject({ method: 'GET', url, headers });

  beforeAll(async () => {
    rt = await createTestRuntime({ env: { INBOX_AUTH: 'dev:inbox-password' }, worker: false });
  });

  afterAll(async () => {
    await rt?.close();
  });

  beforeEach(() => {
    rt.inbox?.deleteAll();
  });

  it('are listed in the JSON API and on the message page', async () => {
    const id = await ingest(
      message('Invoice', [
        {
          type: 'application/pdf',
          content: PDF,
          disposition: 'attachment; filename="invoice.pdf"',
        },
        {
          type: 'image/png',
          content: PNG,
          disposition: 'inline; filename="logo.png"',
          contentId: 'logo@other-app.test',
        },
        { type: 'application/octet-stream', content: Buffer.alloc(3000, 7) },
      ]),
    );
    const res = await get(`/_inbox/api/messages/${id}`);
    expect(res.statusCode).toBe(200);
    const expected: AttachmentInfo[] = [
      {
        index: 0,
        filename: 'invoice.pdf',
        contentType: 'application/pdf',
        size: PDF.length,
        contentId: null,
        inline: false,
      },
      {
        index: 1,
        filename: 'logo.png',
        contentType: 'image/png',
        size: PNG.length,
        contentId: 'logo@other-app.test',
        inline: true,
      },
      {
        index: 2,
        filename: 'attachment-3',
        contentType: 'application/octet-stream',
        size: 3000,
        contentId: null,
        inline: false,
      },
    ];
    expect(res.json().attachments).toEqual(expected);

    const page = await get(`/_inbox/messages/${id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h2 id="attachments-title">Attachments</h2>');
    expect(page.body).toContain(`href="/_inbox/messages/${id}/attachments/0" download`);
    expect(page.body).toContain(
      `>invoice.pdf</a> <span class="attachment-meta">application/pdf · ${PDF.length} B</span>`,
    );
    expect(page.body).toContain(`image/png · ${PNG.length} B · inline`);
    expect(page.body).toContain('>attachment-3</a>');
    expect(page.body).toContain('application/octet-stream · 2.9 KB');
    // The section sits between the actions and the HTML part.
    const actions = page.body.indexOf('class="actions"');
    const section = page.body.indexOf('class="attachments"');
    expect(actions).toBeGreaterThan(0);
    expect(section).toBeGreaterThan(actions);
    expect(page.body.indexOf('<h2>HTML</h2>')).toBeGreaterThan(section);
  });

  it('are absent for a message without any, including the transport’s fast path', async () => {
    const parsed = await ingest(
      Buffer.from('From: a@other-app.test\r\nTo: jane@example.com\r\nSubject: Plain\r\n\r\nHi\r\n'),
    );
    const known = await rt.inbox?.ingest(
      Buffer.from(
        'From: app@mailproof.test\r\nTo: jane@example.com\r\nSubject: Known\r\n\r\nHi\r\n',
      ),
      { from: null, to: ['jane@example.com'] },
      null,
      {
        from: 'app@mailproof.test',
        to: ['jane@example.com'],
        subject: 'Known',
        text: 'Hi',
        html: '<p>Hi</p>',
        messageId: '<known@mailproof.test>',
      },
    );
    for (const id of [parsed, known]) {
      expect((await get(`/_inbox/api/messages/${id}`)).json().attachments).toEqual([]);
      const page = await get(`/_inbox/messages/${id}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('Attachments');
      expect((await get(`/_inbox/messages/${id}/attachments/0`)).statusCode).toBe(404);
    }
  });

  it('download byte for byte with their type, an attachment disposition and nosniff', async () => {
    const id = await ingest(
      message('Invoice', [
        {
          type: 'application/pdf',
          content: PDF,
          disposition: 'attachment; filename="invoice.pdf"',
        },
        { type: 'image/png', content: PNG, disposition: 'inline; filename="logo.png"' },
      ]),
    );
    const pdf = await get(`/_inbox/messages/${id}/attachments/0`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    expect(pdf.headers['content-disposition']).toBe(
      `attachment; filename="invoice.pdf"; filename*=UTF-8''invoice.pdf`,
    );
    expect(pdf.headers['x-content-type-options']).toBe('nosniff');
    expect(pdf.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    expect(pdf.headers['cache-control']).toBe('no-store');
    expect(sha256(pdf.rawPayload)).toBe(sha256(PDF));

    // An inline part downloads too: the disposition of the download is always attachment.
    const png = await get(`/_inbox/messages/${id}/attachments/1`);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['content-disposition']).toMatch(/^attachment; filename="logo\.png"/);
    expect(png.rawPayload.equals(PNG)).toBe(true);
  });

  it('download as application/octet-stream when a browser would run them', async () => {
    const active = [
      'text/html',
      'image/svg+xml',
      'application/xhtml+xml',
      'text/xml',
      'application/xml',
      'application/rss+xml',
      'application/javascript',
      'text/javascript',
      'application/x-javascript',
      'application/ecmascript',
    ];
    const harmless = ['text/plain', 'image/png', 'application/pdf', 'text/csv'];
    const id = await ingest(
      message(
        'Active content',
        [...active, ...harmless].map((type, i) => ({
          type,
          content: '<script>alert(document.domain)</script>',
          disposition: `attachment; filename="file-${i}"`,
        })),
      ),
    );
    const types: string[] = [];
    for (let index = 0; index < active.length + harmless.length; index++) {
      const res = await get(`/_inbox/messages/${id}/attachments/${index}`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-disposition']).toMatch(/^attachment;/);
      expect(res.body).toBe('<script>alert(document.domain)</script>');
      types.push(String(res.headers['content-type']));
    }
    expect(types).toEqual([
      ...active.map(() => 'application/octet-stream'),
      'text/plain',
      'image/png',
      'application/pdf',
      'text/csv',
    ]);
    // The JSON API still says what the part claims to be.
    const listed = (await get(`/_inbox/api/messages/${id}`)).json().attachments as AttachmentInfo[];
    expect(listed.map((a) => a.contentType)).toEqual([...active, ...harmless]);
  });

  it('have names without paths or control characters, sent per RFC 6266', async () => {
    const id = await ingest(
      message('Names', [
        {
          type: 'text/plain',
          content: 'a',
          disposition: 'attachment; filename="../../etc/passwd"',
        },
        {
          type: 'text/plain',
          content: 'b',
          disposition: 'attachment; filename="C:\\\\Users\\\\me\\\\evil.txt"',
        },
        // U+202E RIGHT-TO-LEFT OVERRIDE would show "invoice\u202Efdp.exe" as "invoiceexe.pdf".
        {
          type: 'application/octet-stream',
          content: 'c',
          disposition: "attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe",
        },
        { type: 'text/plain', content: 'd', disposition: 'attachment; filename=".."' },
        {
          type: 'application/pdf',
          content: 'e',
          disposition: "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%20100%25.pdf",
        },
        {
          type: 'text/plain',
          content: 'f',
          disposition: 'attachment; filename="=?UTF-8?B?5Lya6K2w6LOH5paZLnR4dA==?="',
        },
      ]),
    );
    const listed = (await get(`/_inbox/api/messages/${id}`)).json().attachments as AttachmentInfo[];
    expect(listed.map((a) => a.filename)).toEqual([
      'passwd',
      'evil.txt',
      'invoicefdp.exe',
      'attachment-4',
      'résumé "final" 100%.pdf',
      '会議資料.txt',
    ]);
    const dispositions: string[] = [];
    for (const a of listed) {
      const res = await get(`/_inbox/messages/${id}/attachments/${a.index}`);
      dispositions.push(String(res.headers['content-disposition']));
    }
    expect(dispositions).toEqual([
      `attachment; filename="passwd"; filename*=UTF-8''passwd`,
      `attachment; filename="evil.txt"; filename*=UTF-8''evil.txt`,
      `attachment; filename="invoicefdp.exe"; filename*=UTF-8''invoicefdp.exe`,
      `attachment; filename="attachment-4"; filename*=UTF-8''attachment-4`,
      `attachment; filename="resume _final_ 100_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%20100%25.pdf`,
      `attachment; filename="____.txt"; filename*=UTF-8''%E4%BC%9A%E8%AD%B0%E8%B3%87%E6%96%99.txt`,
    ]);
  });

  it('answer 404 for an index out of range, a malformed index or an unknown message', async () => {
    const id = await ingest(
      message('One', [{ type: 'application/pdf', content: PDF, disposition: 'attachment' }]),
    );
    expect((await get(`/_inbox/messages/${id}/attachments/0`)).statusCode).toBe(200);
    for (const index of ['1', '99', '-1', '1.5', '01', 'abc', '0x0', '9999999999']) {
      const res = await get(`/_inbox/messages/${id}/attachments/${index}`);
      expect(res.statusCode, index).toBe(404);
      expect(res.headers['content-disposition'], index).toBeUndefined();
    }
    expect((await get(`/_inbox/messages/${id + 1000}/attachments/0`)).statusCode).toBe(404);
  });

  it('need the INBOX_AUTH password like every inbox page', async () => {
    const id = await ingest(
      message('Secret', [{ type: 'application/pdf', content: PDF, disposition: 'attachment' }]),
    );
    const url = `/_inbox/messages/${id}/attachments/0`;
    const anonymous = await get(url, {});
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm="Mailproof inbox"/);
    expect(anonymous.rawPayload.includes(PDF)).toBe(false);
    const wrong = `Basic ${Buffer.from('dev:wrong-password').toString('base64')}`;
    expect((await get(url, { authorization: wrong })).statusCode).toBe(401);
    // Unknown messages are not revealed to a caller without the password either.
    expect((await get(`/_inbox/messages/${id + 1000}/attachments/0`, {})).statusCode).toBe(401);
    expect((await get(url)).statusCode).toBe(200);
  });
});

describe('attachment helpers', () => {
  it('safeFilename keeps a plain name and falls back to attachment-N', () => {
    expect(safeFilename('report.pdf', 0)).toBe('report.pdf');
    expect(safeFilename(undefined, 0)).toBe('attachment-1');
    expect(safeFilename('   ', 4)).toBe('attachment-5');
    expect(safeFilename('a/b\\c\u0000d\u200be\u0007.txt', 0)).toBe('cde.txt');
    expect(safeFilename('.hidden', 0)).toBe('hidden');
    expect(Array.from(safeFilename(`${'é'.repeat(300)}.txt`, 0))).toHaveLength(200);
  });

  it('downloadType refuses malformed types', () => {
    expect(downloadType('Image/PNG')).toBe('image/png');
    expect(downloadType('text/plain\r\nSet-Cookie: a=b')).toBe('application/octet-stream');
    expect(downloadType('')).toBe('application/octet-stream');
    expect(downloadType('text/html; charset=utf-8')).toBe('application/octet-stream');
  });

  it('attachmentDisposition encodes every byte outside RFC 5987 attr-char', () => {
    expect(attachmentDisposition("it's (1)*.txt")).toBe(
      `attachment; filename="it's (1)*.txt"; filename*=UTF-8''it%27s%20%281%29%2A.txt`,
    );
    expect(attachmentDisposition('a\\b"c.txt')).toBe(
      `attachment; filename="a_b_c.txt"; filename*=UTF-8''a%5Cb%22c.txt`,
    );
  });

  it('humanSize reads like a file manager', () => {
    expect(humanSize(0)).toBe('0 B');
    expect(humanSize(1023)).toBe('1023 B');
    expect(humanSize(1536)).toBe('1.5 KB');
    expect(humanSize(5 * 1024 * 1024)).toBe('5.0 MB');
  });
});
