// Our MIME writer (src/mail/mime.ts) against nodemailer's composer: for any subject, sender name
// and bodies, mailparser reads the same message from both; the headers are safe; and what the
// writer does not handle goes to nodemailer.
import fc from 'fast-check';
import * as libqp from 'libqp';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import {
  composeMime,
  composeMimeWithNodemailer,
  type MimeInput,
  quotedPrintable,
  writeMime,
} from '../../src/mail/mime.ts';

const date = new Date('2026-11-27T10:00:00Z');

async function parsedBoth(email: MimeInput) {
  const ours = writeMime(email);
  if (!ours) throw new Error('expected the fast writer to take this message');
  const [a, b] = await Promise.all([
    simpleParser(ours),
    simpleParser(await composeMimeWithNodemailer(email)),
  ]);
  return { ours, a, b };
}

// Line breaks are CRLF in both (nodemailer lets a lone CR through; we make it a line break).
const lineBreaks = (value: string | false | undefined) =>
  typeof value === 'string' ? value.replace(/\r\n?|\n/g, '\n') : value;

function essentials(parsed: Awaited<ReturnType<typeof simpleParser>>) {
  const one = (value: typeof parsed.to) => (Array.isArray(value) ? value[0] : value)?.value;
  return {
    // Surrounding whitespace is dropped (by nodemailer or by mailparser's reading of it).
    subject: parsed.subject?.trim() || undefined,
    from: parsed.from?.value,
    to: one(parsed.to),
    replyTo: parsed.replyTo?.value,
    messageId: parsed.messageId,
    date: parsed.date?.toISOString(),
    text: lineBreaks(parsed.text),
    html: lineBreaks(parsed.html),
    attachments: parsed.attachments.length,
  };
}

const base: MimeInput = {
  from: 'Mailproof <no-reply@example.test>',
  to: 'someone@example.test',
  subject: 'Confirm your email address for Mailproof',
  text: 'Your code is 12345678.\n\nhttp://127.0.0.1:3000/verify/abc',
  html: '<!DOCTYPE html><html><body><p>Your code is <b>12345678</b>.</p></body></html>',
  messageId: '<0123abcd@mailproof.example.test>',
  date,
};

// Text with the characters MIME and SMTP care about: CR/LF, dots and hyphens at line starts,
// "From " lines, trailing spaces, '=' signs, tabs, long lines, and any unicode.
const awkward = fc.stringMatching(
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the hostile values
  /^([-. =\t]|From |\r\n|\n|\r|--|[a-z]{1,90}|ä|€|😀|漢字|\u0000|\u00a0)*$/,
);

describe('writeMime', () => {
  it('writes a message mailparser reads exactly as nodemailer’s, for the shipped shape', async () => {
    const { a, b } = await parsedBoth(base);
    expect(essentials(a)).toEqual(essentials(b));
    expect(a.text).toBe('Your code is 12345678.\n\nhttp://127.0.0.1:3000/verify/abc');
    expect(a.from?.value).toEqual([{ address: 'no-reply@example.test', name: 'Mailproof' }]);
  });

  it('agrees with nodemailer on any subject, sender name, reply-to and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          subject: fc.oneof(fc.string({ maxLength: 300 }), awkward),
          name: fc.oneof(
            fc.string({ maxLength: 60 }),
            fc.constantFrom('Ex, Inc.', 'A "quoted" name', 'Zoë', 'a\\b', ''),
          ),
          text: awkward,
          html: fc.oneof(awkward, fc.string({ maxLength: 2000 })),
          replyTo: fc.option(
            fc.record({
              name: fc.string({ maxLength: 40 }),
              address: fc.constant('reply@example.test'),
            }),
            { nil: undefined },
          ),
        }),
        async ({ subject, name, text, html, replyTo }) => {
          const email: MimeInput = {
            ...base,
            from: name
              ? `"${name.replace(/["\\\r\n]/g, '')}" <no-reply@example.test>`
              : 'no-reply@example.test',
            subject,
            text,
            html,
            ...(replyTo ? { replyTo } : {}),
          };
          const ours = writeMime(email);
          // An empty part or a sender outside the shape: composeMime uses nodemailer instead.
          if (!ours) return;
          // Bare CRs and LFs are line breaks to us; nodemailer lets a lone CR through as data.
          const crlf = (value: string) => value.replace(/\r\n?|\n/g, '\r\n');
          const reference = { ...email, text: crlf(text), html: crlf(html) };
          const [a, b] = await Promise.all([
            simpleParser(ours),
            simpleParser(await composeMimeWithNodemailer(reference)),
          ]);
          expect(essentials(a)).toEqual(essentials(b));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps every line within 78 characters, ASCII only, CRLF line ends, no header injection', async () => {
    const ours = writeMime({
      ...base,
      subject: `Hello\r\nBcc: victim@example.test ${'é'.repeat(100)}`,
      text: `${'x'.repeat(500)}\n.\n..leading dots\nFrom the start`,
      html: `<p>${'€'.repeat(300)}</p>`,
    });
    if (!ours) throw new Error('fast writer refused');
    const source = ours.toString('latin1');
    expect([...source].every((c) => c.charCodeAt(0) < 0x80)).toBe(true);
    const lines = source.split('\r\n');
    expect(lines.every((line) => line.length <= 78)).toBe(true);
    expect(source.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    const header = source.slice(0, source.indexOf('\r\n\r\n'));
    expect(header).not.toMatch(/^Bcc:/im);
    const parsed = await simpleParser(ours);
    expect(parsed.subject).toBe(`Hello Bcc: victim@example.test ${'é'.repeat(100)}`);
    expect(parsed.text).toBe(`${'x'.repeat(500)}\n.\n..leading dots\nFrom the start`);
    expect(parsed.bcc).toBeUndefined();
  });

  it('uses a fresh boundary per message', () => {
    const boundary = (b: Buffer | null) => /boundary="([^"]+)"/.exec(String(b))?.[1];
    expect(boundary(writeMime(base))).toBeTruthy();
    expect(boundary(writeMime(base))).not.toBe(boundary(writeMime(base)));
  });

  it('leaves non-ASCII addresses to nodemailer, which composeMime then uses', async () => {
    const email = { ...base, to: 'jörg@bücher.example' };
    expect(writeMime(email)).toBeNull();
    const raw = await composeMime(email);
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe(base.subject);
    expect(raw.toString()).toMatch(/^To: /m);
    expect(writeMime({ ...base, from: 'Bücher <info@bücher.example>' })).toBeNull();
    expect(writeMime({ ...base, text: '' })).toBeNull();
  });
});

describe('quotedPrintable', () => {
  // libqp, the encoder it replaced, is the reference decoder; line breaks come back as CRLF.
  const decoded = (encoded: string) => libqp.decode(encoded).toString('utf8');
  const crlf = (value: string) => value.replace(/\r\n|\r|\n/g, '\r\n');

  it('keeps printable ASCII, escapes "=" and the rest, and encodes whitespace before a line end', () => {
    expect(quotedPrintable('a=b')).toBe('a=3Db');
    expect(quotedPrintable('Zoë €')).toBe('Zo=C3=AB =E2=82=AC');
    expect(quotedPrintable('tab\t\nspace \r\nlast ')).toBe('tab=09\r\nspace=20\r\nlast=20');
    expect(quotedPrintable('a\rb\nc\r\nd')).toBe('a\r\nb\r\nc\r\nd');
    expect(quotedPrintable('')).toBe('');
  });

  it('encodes bodies of any size, none of them cut short', () => {
    for (const body of [
      '😀'.repeat(50_000),
      '-'.repeat(9000),
      `${'é'.repeat(3000)}\n`.repeat(20),
    ]) {
      expect(decoded(quotedPrintable(body))).toBe(crlf(body));
    }
  });

  it('escapes a "-" that starts a line, so no line of a part can read as a MIME boundary', () => {
    expect(quotedPrintable('--boundary\n-x\na-b')).toBe('=2D-boundary\r\n=2Dx\r\na-b');
    // After a soft break too.
    const encoded = quotedPrintable(`${'x'.repeat(75)}--z`);
    expect(encoded).toBe(`${'x'.repeat(75)}=\r\n=2D-z`);
  });

  it('breaks long lines softly at 76 characters without splitting an escape', () => {
    const encoded = quotedPrintable(`${'x'.repeat(74)}é${'y'.repeat(200)}`);
    const lines = encoded.split('\r\n');
    expect(lines[0]).toBe(`${'x'.repeat(74)}=`);
    expect(lines[1]?.startsWith('=C3=A9y')).toBe(true);
    // The two bytes of "é" do not fit after 73 characters: both go to the next line.
    expect(quotedPrintable(`${'x'.repeat(73)}é`).split('\r\n')).toEqual([
      `${'x'.repeat(73)}=`,
      '=C3=A9',
    ]);
    expect(lines.every((line) => line.length <= 76)).toBe(true);
    expect(decoded(encoded)).toBe(`${'x'.repeat(74)}é${'y'.repeat(200)}`);
  });

  it('round-trips any text: 76-character ASCII lines that decode to the CRLF form of the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 600 }), awkward), (text) => {
        const encoded = quotedPrintable(text);
        expect(encoded).toMatch(/^[\t\x20-\x7e\r\n]*$/);
        const lines = encoded.split('\r\n');
        expect(lines.every((line) => line.length <= 76)).toBe(true);
        // No line ends in a bare space or tab (transports may strip them).
        expect(lines.every((line) => !/[ \t]$/.test(line))).toBe(true);
        expect(lines.every((line) => !line.startsWith('-'))).toBe(true);
        // Each line holds whole UTF-8 sequences: a soft break never splits a character.
        const utf8 = new TextDecoder('utf-8', { fatal: true });
        for (const line of lines) utf8.decode(libqp.decode(line.replace(/=$/, '')));
        expect(encoded.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
        expect(decoded(encoded)).toBe(crlf(text));
      }),
      { numRuns: 500 },
    );
  });
});
