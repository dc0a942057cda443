// Every template the product ships, rendered with its own sample data, meets §4's bar.
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { renderEmail } from '../../src/mail/render.ts';
import { type Branding, type TemplateName, templates } from '../../src/mail/templates/index.ts';
import { composeMime, type OutgoingEmail } from '../../src/mail/transport.ts';

const branding: Branding = {
  appName: 'Mailproof',
  brandColor: '#2f5bd3',
  baseUrl: 'http://mailproof.test',
};

const names = Object.keys(templates) as TemplateName[];

function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);/gi, (_m, hex: string) =>
      String.fromCodePoint(Number.parseInt(hex, 16)),
    )
    .replace(/&#(\d+);/g, (_m, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function hrefsOf(html: string): string[] {
  return [...html.matchAll(/<a\b[^>]*\bhref="([^"]*)"/gi)].map((m) => decodeEntities(m[1] ?? ''));
}

function sample(name: TemplateName): unknown {
  return (templates[name] as { sample(b: Branding): unknown }).sample(branding);
}

describe('the template registry', () => {
  it('ships the sign-up templates, each named after its key', () => {
    expect(names).toEqual(expect.arrayContaining(['verify-email', 'signup-existing']));
    for (const name of names) expect(templates[name].name).toBe(name);
  });

  it('refuses an unknown template name', () => {
    expect(() => renderEmail('no-such-template', {}, branding)).toThrow(/no-such-template/);
  });
});

describe.each(names)('template %s with its sample data', (name) => {
  const rendered = renderEmail(name, sample(name), branding);

  it('has a subject on one line', () => {
    expect(rendered.subject.trim().length).toBeGreaterThan(5);
    expect(rendered.subject).not.toMatch(/[\r\n]/);
  });

  it('is a full HTML document with a language', () => {
    expect(rendered.html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(rendered.html).toContain('<html lang="en"');
    expect(rendered.html).toMatch(/<meta charset="utf-8">/i);
    expect(rendered.html).toContain(`<title>${rendered.subject}</title>`);
    expect(rendered.html.trimEnd().endsWith('</html>')).toBe(true);
  });

  it('has at least one link, each built from BASE_URL or a mailto: reply link', () => {
    const links = hrefsOf(rendered.html);
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) {
      expect(link.startsWith(`${branding.baseUrl}/`) || link.startsWith('mailto:')).toBe(true);
    }
  });

  it('has a plain-text part that carries every link of the HTML', () => {
    expect(rendered.text.trim().length).toBeGreaterThan(50);
    // No markup left (an address in angle brackets, <ada@example.com>, is text).
    expect(rendered.text).not.toMatch(/<[a-z][^>@]*>/i);
    // html-to-text shows a mailto: link as its bare address.
    for (const link of hrefsOf(rendered.html)) {
      expect(rendered.text).toContain(link.replace(/^mailto:/, ''));
    }
  });

  it('stays under 100 KB of HTML (Gmail clips at 102 KB)', () => {
    expect(Buffer.byteLength(rendered.html, 'utf8')).toBeLessThan(100 * 1024);
  });

  it('gives every image an alt text', () => {
    const images = [...rendered.html.matchAll(/<img\b[^>]*>/gi)].map((m) => m[0]);
    for (const img of images) expect(img).toMatch(/\balt="[^"]*"/i);
  });

  it('uses no <script>, <style> block or external stylesheet', () => {
    expect(rendered.html).not.toMatch(/<script\b/i);
    expect(rendered.html).not.toMatch(/<link\b[^>]*stylesheet/i);
  });

  it('is identical when rendered twice with the same data', () => {
    expect(renderEmail(name, sample(name), branding)).toEqual(rendered);
  });
});

describe('verify-email content', () => {
  it('shows the link and the code in both parts', () => {
    const data = {
      url: 'http://mailproof.test/verify/AbcDEF-ghi_123',
      code: '48213907',
      linkMinutes: 60,
      codeMinutes: 10,
    };
    const { html, text, subject } = renderEmail('verify-email', data, branding);
    expect(subject).toContain('Mailproof');
    expect(hrefsOf(html)).toContain(data.url);
    expect(text).toContain(data.url);
    // Shown as two groups of four so it is easy to type.
    expect(html).toContain('4821 3907');
    expect(text).toContain('4821 3907');
    expect(text).toContain('1 hour');
    expect(text).toContain('10 minutes');
  });
});

describe('escaping', () => {
  const hostile = '"><script>alert(1)</script>';

  it('escapes a url and a code that carry markup', () => {
    const { html, text } = renderEmail(
      'verify-email',
      {
        url: `http://mailproof.test/verify/${hostile}`,
        code: '<script>',
        linkMinutes: 60,
        codeMinutes: 10,
      },
      branding,
    );
    const url = `http://mailproof.test/verify/${hostile}`;
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<\/script/i);
    // The attribute was not broken out of: each href decodes back to the whole value.
    expect(hrefsOf(html)).toEqual([url, url]);
    expect(html).toContain('&quot;');
    expect(html).toMatch(/&lt;scr/);
    // The text part is plain text: the value appears as typed, not as markup of the HTML.
    expect(text).toContain('alert(1)');
  });

  it('escapes the app name in the title, the header and the footer', () => {
    const evil: Branding = { ...branding, appName: '<script>alert("x")</script> & Co' };
    for (const name of names) {
      const { html, subject } = renderEmail(name, sample(name), evil);
      expect(subject).toContain('<script>alert("x")</script> & Co');
      expect(html).not.toMatch(/<script/i);
      const title = /<title>([^<]*)<\/title>/.exec(html);
      expect(title?.[1] && decodeEntities(title[1])).toBe(subject);
      expect(html).toContain('&lt;script');
    }
  });

  it('escapes a login url in the signup-existing note', () => {
    const { html } = renderEmail(
      'signup-existing',
      { loginUrl: `http://x.test/${hostile}` },
      branding,
    );
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&quot;');
  });
});

describe('composeMime', () => {
  const email: OutgoingEmail = {
    from: 'Mailproof <no-reply@mailproof.test>',
    to: 'someone@example.com',
    ...renderEmail('verify-email', sample('verify-email'), branding),
    messageId: '<compose-test-1@mailproof.test>',
    provenance: {
      template: 'verify-email',
      flow: 'signup',
      requestId: null,
      outboxId: 'compose-test-1',
      attempt: 1,
    },
  };

  it('builds a message with Date, Message-ID, MIME-Version, From, To, Subject and both parts', async () => {
    const raw = await composeMime(email);
    const source = raw.toString('utf8');
    const head = source.slice(0, source.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^Date: .+$/m);
    expect(head).toMatch(/^Message-ID: <compose-test-1@mailproof\.test>$/m);
    expect(head).toMatch(/^MIME-Version: 1\.0$/m);
    expect(head).toMatch(/^Content-Type: multipart\/alternative;/m);
    // Lines end in CRLF, as SMTP requires.
    expect(source).not.toMatch(/[^\r]\n/);

    const parsed = await simpleParser(raw);
    expect(Number.isNaN(parsed.date?.getTime() ?? Number.NaN)).toBe(false);
    expect(parsed.messageId).toBe('<compose-test-1@mailproof.test>');
    expect(parsed.subject).toBe(email.subject);
    expect(parsed.from?.value).toEqual([{ name: 'Mailproof', address: 'no-reply@mailproof.test' }]);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0]?.address : null).toBe(
      'someone@example.com',
    );
    expect(parsed.text?.trim()).toBe(email.text.trim());
    expect(parsed.html).toBe(email.html);
  });

  it('keeps provenance out of the message', async () => {
    const source = (await composeMime(email)).toString('utf8');
    expect(source).not.toMatch(/^X-.*provenance/im);
    expect(source).not.toContain('outboxId');
  });

  it('keeps a CR/LF in the subject out of the headers', async () => {
    const raw = await composeMime({ ...email, subject: 'Hello\r\nBcc: victim@example.com' });
    const source = raw.toString('utf8');
    const head = source.slice(0, source.indexOf('\r\n\r\n'));
    expect(head).not.toMatch(/^Bcc:/im);
    const parsed = await simpleParser(raw);
    expect(parsed.bcc).toBeUndefined();
  });
});
