// Pulls links and the verification link/code out of a message, so tests need no regex of their own.

export interface Verification {
  url: string | null;
  code: string | null;
}

const HREF = /href\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
const URL_IN_TEXT = /https?:\/\/[^\s<>"')\]]+/gi;
const VERIFY_PATH = /\/(verify|confirm|reset|activate|magic|email-change)(\/|\?|$)/i;
// Eight digits, optionally split in two groups of four by a space or hyphen.
const CODE = /(?<![\d/=?&#.-])(\d{4})[ -]?(\d{4})(?![\d/-])/;

export function extractLinks(html: string | null, text: string | null): string[] {
  const links = new Set<string>();
  if (html) {
    for (const match of html.matchAll(HREF)) {
      const href = decodeEntities((match[1] ?? match[2] ?? '').trim());
      if (/^https?:\/\//i.test(href)) links.add(href);
    }
  }
  if (text) {
    for (const match of text.matchAll(URL_IN_TEXT)) links.add(match[0].replace(/[.,;:]+$/, ''));
  }
  return [...links];
}

export function extractVerification(links: string[], text: string | null): Verification {
  const url = links.find((link) => VERIFY_PATH.test(safePath(link))) ?? null;
  const withoutLinks = (text ?? '').replace(URL_IN_TEXT, ' ');
  const match = CODE.exec(withoutLinks);
  const code = match ? `${match[1]}${match[2]}` : null;
  return { url, code };
}

function safePath(link: string): string {
  try {
    return new URL(link).pathname;
  } catch {
    return '';
  }
}

function decodeEntities(value: string): string {
  return value
    .replace(/&amp;/g, '&')
    .replace(/&#x([0-9a-f]+);/gi, (_m, hex: string) => codePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_m, dec: string) => codePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/** A numeric entity outside Unicode (a broken message) becomes U+FFFD instead of an exception. */
function codePoint(value: number): string {
  return Number.isInteger(value) && value >= 0 && value <= 0x10ffff
    ? String.fromCodePoint(value)
    : '\ufffd';
}
