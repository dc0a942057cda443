// Builds the MIME message of one of our emails: a text and an HTML part as multipart/alternative,
// each quoted-printable, and the usual headers. Our messages always have this one shape, so it is
// written directly, with libmime (encoded-words, folding) and libqp (quoted-printable) doing the
// encoding: about a tenth of the CPU of nodemailer's general composer, which builds a stream
// pipeline per part (docs/performance.md). Anything outside the shape it knows (an address that
// is not plain ASCII) goes to nodemailer's composer instead, so the output is always what a
// standard composer would make. Both are checked against each other in test/mail/mime.test.ts.
import { randomBytes } from 'node:crypto';
import libmime from 'libmime';
import * as libqp from 'libqp';
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

function quotedPrintable(body: string): string {
  return libqp.wrap(libqp.encode(body.replace(/\r?\n|\r/g, '\r\n')), 76);
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
