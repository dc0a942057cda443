import { compile } from 'html-to-text';
import { render } from 'preact-render-to-string';
import {
  type Branding,
  type EmailTemplate,
  isTemplateName,
  type TemplateName,
  templates,
} from './templates/index.ts';

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
  replyTo?: { name: string; address: string };
}

/** html-to-text as the text parts use it (exported for the tests that check the cache below). */
export const toText = compile({
  wordwrap: 78,
  selectors: [
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
  ],
});

/** A template with its data type erased. */
interface AnyTemplate {
  subject(data: unknown, branding: Branding): string;
  body(data: unknown, branding: Branding): Parameters<typeof render>[0];
  replyTo?(data: unknown): { name: string; address: string };
}

/** Renders a shipped template by name, or a template object (a deployer's own, being checked). */
export function renderEmail(
  // biome-ignore lint/suspicious/noExplicitAny: each template has its own data type
  nameOrTemplate: string | EmailTemplate<any>,
  data: unknown,
  branding: Branding,
): RenderedEmail {
  if (typeof nameOrTemplate !== 'string') {
    return renderWith(nameOrTemplate as AnyTemplate, null, data, branding);
  }
  if (!isTemplateName(nameOrTemplate)) {
    throw new Error(`Unknown email template "${nameOrTemplate}"`);
  }
  return renderWith(
    templates[nameOrTemplate] as unknown as AnyTemplate,
    nameOrTemplate,
    data,
    branding,
  );
}

/** The same message rendered without the shape cache below: the reference its tests hold it to. */
export function renderEmailUncached(
  name: TemplateName,
  data: unknown,
  branding: Branding,
): RenderedEmail {
  return renderWith(templates[name] as unknown as AnyTemplate, null, data, branding);
}

/** `cacheAs`: the shipped template's name, under which its shapes are cached; null renders directly. */
function renderWith(
  template: AnyTemplate,
  cacheAs: string | null,
  data: unknown,
  branding: Branding,
): RenderedEmail {
  const subject = template.subject(data, branding);
  const replyTo = template.replyTo?.(data);
  const renderHtml = (values: unknown) =>
    wrapHtml(
      values === data ? subject : template.subject(values, branding),
      render(template.body(values, branding)),
    );
  const { html, text } =
    cacheAs === null
      ? directParts(data, renderHtml)
      : partsOfShippedTemplate(cacheAs, data, branding, renderHtml);
  return { subject, html, text, ...(replyTo ? { replyTo } : {}) };
}

function directParts(data: unknown, renderHtml: (values: unknown) => string) {
  const html = renderHtml(data);
  return { html, text: toText(html) };
}

function wrapHtml(subject: string, body: string): string {
  return `<!DOCTYPE html><html lang="en" dir="ltr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><meta name="supported-color-schemes" content="light dark"><title>${escapeHtml(subject)}</title></head><body style="margin:0;padding:0;background-color:#f4f5f7;">${body}</body></html>`;
}

// Rendering is most of a message's CPU: preact's render of the HTML, then html-to-text's reading
// of it for the text part (~300 µs of ~460 when this cache was made; preact is most of the rest).
// Messages of one template differ only in their data, and to both a link or a code is a word of a
// given length: so a template is rendered and converted once per *shape* (the fields, each
// string's length and kinds of character, each number's value) from placeholder data, then the
// values are put into both parts. A placeholder is a run of private-use characters, one per
// character of the value, so it survives whatever the template does with the value (the code box
// splits the code in two groups) and maps back character by character. Only http(s) URLs and
// plain words qualify (nothing HTML escapes, nothing that wraps); other data is rendered
// directly. The first message of each shape is also rendered directly and both parts must come
// out the same, or the shape is never cached (a value in a heading the converter upper-cases,
// say).
// An absolute http(s) URL (a link's text depends on its href only through these) or a plain word.
const SAFE_VALUE = /^(https?:\/\/[A-Za-z0-9._~:/?#@!$*+,;=%-]{1,240}|[A-Za-z0-9._-]{1,256})$/;
const PRIVATE_USE = 0xe000;
const MAX_FIELDS = 24; // 24 × 256 characters fit in the private use area (U+E000–U+F8FF)
const MAX_SHAPES = 256;
/** The converted text as literal pieces and runs of one field's characters [field, start, end]. */
type Piece = string | [field: string, start: number, end: number];
type Shape = { fields: string[]; html: Piece[]; text: Piece[] } | 'direct';
const shapes = new Map<string, Shape>();
const brandingIds = new WeakMap<Branding, number>();
let nextBrandingId = 0;

/** Which kinds of character a value has: a shape holds only for values of the same kinds. */
function kinds(value: string): string {
  return `${/[a-z]/.test(value) ? 'a' : ''}${/[A-Z]/.test(value) ? 'A' : ''}${/[0-9]/.test(value) ? '9' : ''}${/[^A-Za-z0-9]/.test(value) ? '.' : ''}`;
}

function partsOfShippedTemplate(
  name: string,
  data: unknown,
  branding: Branding,
  renderHtml: (values: unknown) => string,
): { html: string; text: string } {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return directParts(data, renderHtml);
  }
  const keyParts: string[] = [];
  const fields: string[] = [];
  for (const [field, value] of Object.entries(data as Record<string, unknown>)) {
    if (typeof value === 'number' || typeof value === 'boolean') {
      keyParts.push(`${field}=${value}`);
    } else if (typeof value === 'string' && SAFE_VALUE.test(value)) {
      keyParts.push(`${field}:${value.length}${kinds(value)}`);
      fields.push(field);
    } else {
      return directParts(data, renderHtml);
    }
  }
  if (fields.length === 0 || fields.length > MAX_FIELDS) return directParts(data, renderHtml);
  let brandingId = brandingIds.get(branding);
  if (brandingId === undefined) {
    brandingId = nextBrandingId++;
    brandingIds.set(branding, brandingId);
  }
  const key = `${brandingId}|${name}|${keyParts.join('|')}`;
  const values = data as Record<string, string>;
  const shape = shapes.get(key);
  if (shape === 'direct') return directParts(data, renderHtml);
  if (shape) return { html: fill(shape.html, values), text: fill(shape.text, values) };

  const placeholders: Record<string, unknown> = { ...values };
  fields.forEach((field, i) => {
    const length = (values[field] as string).length;
    placeholders[field] = String.fromCharCode(
      ...Array.from({ length }, (_, k) => PRIVATE_USE + i * 256 + k),
    );
  });
  const placeholderHtml = renderHtml(placeholders);
  const made: Shape = {
    fields,
    html: piecesOf(placeholderHtml, fields),
    text: piecesOf(toText(placeholderHtml), fields),
  };
  const direct = directParts(data, renderHtml);
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  const same = fill(made.html, values) === direct.html && fill(made.text, values) === direct.text;
  shapes.set(key, same ? made : 'direct');
  return direct;
}

/** Splits a converted text into literal pieces and runs of consecutive placeholder characters. */
function piecesOf(text: string, fields: string[]): Piece[] {
  const pieces: Piece[] = [];
  let literal = '';
  let run: [string, number, number] | null = null;
  for (const char of text) {
    const offset = char.charCodeAt(0) - PRIVATE_USE;
    const field = offset >= 0 && offset < fields.length * 256 ? fields[offset >> 8] : undefined;
    if (field === undefined) {
      if (run) pieces.push(run);
      run = null;
      literal += char;
      continue;
    }
    const index = offset & 255;
    if (run && run[0] === field && run[2] === index) {
      run[2] = index + 1;
      continue;
    }
    if (literal) pieces.push(literal);
    literal = '';
    if (run) pieces.push(run);
    run = [field, index, index + 1];
  }
  if (run) pieces.push(run);
  if (literal) pieces.push(literal);
  return pieces;
}

function fill(pieces: Piece[], values: Record<string, string>): string {
  let text = '';
  for (const piece of pieces) {
    text += typeof piece === 'string' ? piece : (values[piece[0]] ?? '').slice(piece[1], piece[2]);
  }
  return text;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
