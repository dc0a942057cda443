// Builds the MIME message of one of our emails: a text and an HTML part as multipart/alternative,
// each quoted-printable, and the usual headers. Our messages always have this one shape, so it is
// written directly, with libmime (encoded-words, folding) and quotedPrintable() below doing the
// encoding: about a tenth of the CPU of nodemailer's general composer, which builds a stream
// pipeline per part (docs/performance.md). Anything outside the shape it knows (an address that
// is not plain ASCII) goes to nodemailer's composer instead, so the output is always what a
// standard composer would make. Both are checked against each other in test/mail/mime.test.ts.
import { randomBytes } from 'node:crypto';
import libmime from 'libmime';
import nodemailer from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';

export interface MimeInput {
  /** "Name <address>" or a bare address (MAIL_DEFAULT_SENDER). */
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  messageId: string;
  replyTo?: { name: string; address: string };
  /** For tests; defaults to now. */
  date?: Date;
  /** Carried by OutgoingEmail; never written into the message. */
  provenance?: unknown;
}

const composer = nodemailer.createTransport({
  streamTransport: true,
  buffer: true,
  newline: 'windows',
});

/** nodemailer's composer: the reference, and the path for anything the fast writer does not do. */
export async function composeMimeWithNodemailer(email: MimeInput): Promise<Buffer> {
  const info = await composer.sendMail({
    from: email.from,
    to: email.to,
    subject: email.subject,
    html: email.html,
    text: email.text,
    messageId: email.messageId,
    replyTo: email.replyTo,
    ...(email.date ? { date: email.date } : {}),
  });
  return info.message as Buffer;
}

/** Builds the exact MIME message an SMTP server would receive, without a socket. */
export async function composeMime(email: MimeInput): Promise<Buffer> {
  return writeMime(email) ?? composeMimeWithNodemailer(email);
}

interface Mailbox {
  name: string;
  address: string;
}

// Only plain ASCII addresses without quoting needs; IDN and SMTPUTF8 addresses go to nodemailer.
const PLAIN_ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$/;
const ATEXT_PHRASE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$/;
// Printable ASCII and tab: what a header may carry without an encoded-word.
const PRINTABLE_ASCII = /^[\t\x20-\x7e]*$/;

// A boundary only has to be unlike any line of the parts; quoted-printable encodes a "-" that
// starts a line, so no encoded line can begin with "--". Unique per message: a random prefix per
// process and a counter.
const BOUNDARY_PREFIX = randomBytes(8).toString('hex');
let boundaries = 0;

const parsedFrom = new Map<string, Mailbox | null>();

function parseMailbox(value: string): Mailbox | null {
  const cached = parsedFrom.get(value);
  if (cached !== undefined) return cached;
  const parsed = addressparser(value, { flatten: true });
  const one = parsed.length === 1 ? parsed[0] : undefined;
  const mailbox =
    one && 'address' in one && one.address && PLAIN_ADDRESS.test(one.address)
      ? { name: one.name ?? '', address: one.address }
      : null;
  if (parsedFrom.size < 100) parsedFrom.set(value, mailbox);
  return mailbox;
}

/** The bare address of MAIL_DEFAULT_SENDER for the SMTP envelope; null outside the fast shape. */
export function envelopeSender(from: string): string | null {
  return parseMailbox(from)?.address ?? null;
}

function formatMailbox({ name, address }: Mailbox): string {
  const clean = name.replace(/[\r\n]+/g, ' ').trim();
  if (!clean) return address;
  if (!PRINTABLE_ASCII.test(clean)) return `${libmime.encodeWord(clean, 'Q', 52)} <${address}>`;
  if (ATEXT_PHRASE.test(clean)) return `${clean} <${address}>`;
  return `"${clean.replace(/(["\\])/g, '\\$1')}" <${address}>`;
}

function header(name: string, value: string): string {
  return libmime.foldLines(`${name}: ${value}`, 76);
}

// Printable words with single spaces between them survive folding and unfolding as they are;
// anything else (other whitespace, "=?" that would read as an encoded word) is encoded whole.
const PLAIN_UNSTRUCTURED = /^[\x21-\x7e]+( [\x21-\x7e]+)*$/;

function unstructured(value: string): string {
  const clean = value.replace(/\r?\n|\r/g, ' ');
  return PLAIN_UNSTRUCTURED.test(clean) && !clean.includes('=?')
    ? clean
    : libmime.encodeWord(clean, 'Q', 52);
}

/** RFC 5322 date in UTC, as nodemailer writes it. */
function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT/, '+0000');
}

const HEX_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const EQUALS = 0x3d;
const HYPHEN = 0x2d;
/** Characters on an encoded line before a soft break; with its "=" the line is 76 (RFC 2045 §6.7). */
const QP_LINE = 75;
/** The encoder's output buffer, reused: the string is copied out of it before it returns. */
let qpScratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Quoted-printable (RFC 2045 §6.7) in one pass over the UTF-8 bytes: printable ASCII but "=" as
 * it is, everything else as =XX, a space or tab at the end of a line and a "-" at its start
 * encoded (as libqp does), line breaks kept as CRLF, and a soft break ("=" CRLF) before any line
 * would pass 76 characters. Neither an =XX escape nor a UTF-8 sequence is split by one. libqp's
 * encode-then-wrap took two to three times as long (regular expressions over the encoded text);
 * mailparser reads both the same (test/mail/mime.test.ts).
 */
export function quotedPrintable(body: string): string {
  const input = Buffer.from(body, 'utf8');
  const end = input.length;
  // Worst case: every byte escaped (3×), plus a soft break (3 bytes) per line. A line is at least
  // 64 characters (75 less the 11 a 4-byte sequence may leave unused), so 21 or more input bytes.
  const needed = end * 3 + Math.ceil(end / 16) * 3 + 3;
  if (qpScratch.length < needed)
    qpScratch = Buffer.allocUnsafe(Math.max(needed, 2 * qpScratch.length));
  const out = qpScratch;
  let o = 0;
  let column = 0;
  for (let i = 0; i < end; i++) {
    const byte = input[i] as number;
    // Any line break (CRLF, a lone LF or a lone CR) becomes CRLF.
    if (byte === CR || byte === LF) {
      if (byte === CR && input[i + 1] === LF) i++;
      out[o++] = CR;
      out[o++] = LF;
      column = 0;
      continue;
    }
    let literal: boolean;
    if (byte === 0x20 || byte === 0x09) {
      const next = input[i + 1];
      literal = i + 1 < end && next !== CR && next !== LF;
    } else {
      // A "-" that starts a line is escaped too: no encoded line can then read as a boundary.
      literal =
        byte >= 0x21 && byte <= 0x7e && byte !== EQUALS && !(byte === HYPHEN && column === 0);
    }
    let width = literal ? 1 : 3;
    // A UTF-8 sequence stays on one line: its lead byte makes room for all of it, and the bytes
    // that continue it never break (the input is well-formed: it came from a JS string).
    const room = byte < 0x80 ? width : byte < 0xc0 ? 0 : byte < 0xe0 ? 6 : byte < 0xf0 ? 9 : 12;
    if (column + room > QP_LINE) {
      out[o++] = EQUALS;
      out[o++] = CR;
      out[o++] = LF;
      column = 0;
      if (byte === HYPHEN) {
        literal = false;
        width = 3;
      }
    }
    if (literal) {
      out[o++] = byte;
    } else {
      out[o++] = EQUALS;
      out[o++] = HEX_DIGITS[byte >> 4] as number;
      out[o++] = HEX_DIGITS[byte & 15] as number;
    }
    column += width;
  }
  // A typed array drops writes past its end; never let that cut a message short unnoticed.
  if (o > out.length) throw new Error('quoted-printable output outgrew its buffer');
  return out.toString('latin1', 0, o);
}

/** The fast writer; null when the message is outside the shape it handles. */
export function writeMime(email: MimeInput): Buffer | null {
  const from = parseMailbox(email.from);
  if (!from || !PLAIN_ADDRESS.test(email.to) || !PRINTABLE_ASCII.test(email.messageId)) {
    return null;
  }
  if (email.replyTo && !PLAIN_ADDRESS.test(email.replyTo.address)) return null;
  // nodemailer leaves an empty part out altogether; ours always have both.
  if (!email.text || !email.html) return null;
  // Whitespace around a subject means nothing to a reader (and an empty one is left out).
  const subject = email.subject.replace(/\r?\n|\r/g, ' ').trim();
  const boundary = `--_MP-${BOUNDARY_PREFIX}${(++boundaries).toString(36)}-Part_1`;
  const lines = [
    header('From', formatMailbox(from)),
    header('To', email.to),
    ...(email.replyTo ? [header('Reply-To', formatMailbox(email.replyTo))] : []),
    ...(subject ? [header('Subject', unstructured(subject))] : []),
    header('Message-ID', email.messageId),
    header('Date', rfc5322Date(email.date ?? new Date())),
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative;\r\n boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(email.text),
    `--${boundary}`,
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(email.html),
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}
