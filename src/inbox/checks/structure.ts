// Structure of a message: parts, size, headers, language, alt text, and dark-mode readability.
import type { ChildNode } from 'domhandler';
import { type Document, type Element, elements, inlineStyle, isElement } from './html.ts';
import type { CheckItem } from './types.ts';

/** Gmail clips an HTML part over 102 KB; the templates keep under 100 KB (SPEC §4). */
export const HTML_LIMIT_BYTES = 100 * 1024;

export interface StructureInput {
  document: Document | null;
  html: string | null;
  text: string | null;
  headers: Array<{ name: string; value: string }>;
  size: number;
  /** Whether the MIME message has a text/plain part of its own (a parser may derive text from HTML). */
  hasTextPart?: boolean;
}

/** A text/plain part in the message itself, not text a parser made from the HTML. */
export function hasTextPart(raw: Buffer, headers: Array<{ name: string; value: string }>): boolean {
  const top = headers.find((h) => h.name === 'content-type')?.value.toLowerCase() ?? 'text/plain';
  if (top.startsWith('text/plain')) return true;
  if (!top.startsWith('multipart/')) return false;
  return /\ncontent-type:[ \t]*text\/plain/i.test(raw.toString('latin1'));
}

export function checkStructure(input: StructureInput): CheckItem[] {
  const items: CheckItem[] = [];
  const has = (name: string) => input.headers.some((h) => h.name === name && h.value.trim());
  const text = input.text?.trim() ?? '';
  items.push(
    text && input.hasTextPart !== false
      ? { id: 'text-part', level: 'ok', title: 'Has a plain-text part' }
      : {
          id: 'text-part',
          level: 'error',
          title: 'No plain-text part',
          detail:
            'Some clients, screen readers and spam filters read only the text part; send one with every message.',
        },
  );
  items.push(
    has('message-id')
      ? { id: 'message-id', level: 'ok', title: 'Has a Message-ID' }
      : {
          id: 'message-id',
          level: 'error',
          title: 'No Message-ID header',
          detail: 'Without it duplicates cannot be recognised and some servers reject the message.',
        },
  );
  items.push(
    has('date')
      ? { id: 'date', level: 'ok', title: 'Has a Date' }
      : { id: 'date', level: 'error', title: 'No Date header', detail: 'RFC 5322 requires one.' },
  );
  items.push({
    id: 'size',
    level: 'info',
    title: `Message size ${formatBytes(input.size)}`,
  });
  if (input.html === null || input.document === null) {
    items.push({ id: 'html-part', level: 'info', title: 'No HTML part (text only)' });
    return items;
  }
  const htmlBytes = Buffer.byteLength(input.html);
  items.push(
    htmlBytes > HTML_LIMIT_BYTES
      ? {
          id: 'html-size',
          level: 'error',
          title: `HTML part is ${formatBytes(htmlBytes)}`,
          detail:
            'Gmail clips HTML over 102 KB and hides the rest behind a link; keep it under 100 KB.',
        }
      : { id: 'html-size', level: 'ok', title: `HTML part is ${formatBytes(htmlBytes)}` },
  );
  items.push(checkLang(input.document));
  items.push(checkAltText(input.document));
  items.push(...checkDarkMode(input.document));
  return items;
}

function checkLang(document: Document): CheckItem {
  const root = [...elements(document)].find((e) => e.name === 'html');
  const lang = root?.attribs.lang?.trim();
  return lang
    ? { id: 'lang', level: 'ok', title: `Language declared (${lang})` }
    : {
        id: 'lang',
        level: 'error',
        title: 'No lang on <html>',
        detail: 'Screen readers need the language to pronounce the text; add <html lang="…">.',
      };
}

function checkAltText(document: Document): CheckItem {
  const missing = [...elements(document)]
    .filter((e) => e.name === 'img' && e.attribs.alt === undefined)
    .map((e) => e.attribs.src ?? '(no src)');
  if (missing.length === 0)
    return { id: 'alt-text', level: 'ok', title: 'Every image has alt text' };
  return {
    id: 'alt-text',
    level: 'error',
    title: `${missing.length} image${missing.length === 1 ? '' : 's'} without alt text`,
    detail: `Images are often blocked, and screen readers need the text (alt="" for decoration): ${missing.slice(0, 5).join(', ')}`,
  };
}

interface Colours {
  color: string | null;
  background: string | null;
}

const SKIPPED = new Set(['head', 'style', 'script', 'title', 'template']);

/**
 * A client in dark mode darkens the backgrounds it chose and lightens the text it chose; colours
 * the message sets itself are kept or only partly inverted. Text whose colour is set while its
 * background is left to the client (or the reverse) is how dark text ends up on a dark screen.
 */
function checkDarkMode(document: Document): CheckItem[] {
  const halfSet: string[] = [];
  const lowContrast: string[] = [];
  const visit = (nodes: ChildNode[], inherited: Colours) => {
    for (const node of nodes) {
      if (node.type === 'text') {
        const sample = node.data.replace(/\s+/g, ' ').trim();
        if (!sample) continue;
        if ((inherited.color === null) !== (inherited.background === null)) {
          halfSet.push(sample.slice(0, 40));
        } else if (inherited.color && inherited.background) {
          const ratio = contrast(inherited.color, inherited.background);
          if (ratio !== null && ratio < 4.5) {
            lowContrast.push(`${sample.slice(0, 40)} (${ratio.toFixed(1)}:1)`);
          }
        }
        continue;
      }
      if (!isElement(node) || SKIPPED.has(node.name)) continue;
      if (hidden(node)) continue;
      visit(node.children, coloursOf(node, inherited));
    }
  };
  visit(document.children, { color: null, background: null });
  const items: CheckItem[] = [
    halfSet.length === 0
      ? { id: 'dark-mode', level: 'ok', title: 'Readable in dark mode' }
      : {
          id: 'dark-mode',
          level: 'error',
          title: `${halfSet.length} text${halfSet.length === 1 ? '' : 's'} may be unreadable in dark mode`,
          detail: `Set the text colour and the background together (or neither): ${unique(halfSet).slice(0, 5).join(' · ')}`,
        },
  ];
  if (lowContrast.length > 0) {
    items.push({
      id: 'contrast',
      level: 'warning',
      title: `${lowContrast.length} text${lowContrast.length === 1 ? '' : 's'} below 4.5:1 contrast`,
      detail: unique(lowContrast).slice(0, 5).join(' · '),
    });
  }
  return items;
}

function hidden(element: Element): boolean {
  const style = inlineStyle(element);
  return style.display === 'none' || element.attribs.hidden !== undefined;
}

function coloursOf(element: Element, inherited: Colours): Colours {
  const style = inlineStyle(element);
  const color =
    style.color ?? (element.name === 'font' ? element.attribs.color : undefined) ?? null;
  const background =
    style['background-color'] ??
    backgroundColourOf(style.background) ??
    element.attribs.bgcolor ??
    null;
  return {
    color: color && color !== 'inherit' ? color : inherited.color,
    background:
      background && background !== 'transparent' && background !== 'inherit'
        ? background
        : inherited.background,
  };
}

function backgroundColourOf(shorthand: string | undefined): string | undefined {
  if (!shorthand) return undefined;
  return /#[0-9a-f]{3,8}\b|rgba?\([^)]*\)|\b(white|black)\b/i.exec(shorthand)?.[0];
}

function contrast(a: string, b: string): number | null {
  const first = parseColour(a);
  const second = parseColour(b);
  if (!first || !second) return null;
  const [light, dark] = [luminance(first), luminance(second)].sort((x, y) => y - x) as [
    number,
    number,
  ];
  return (light + 0.05) / (dark + 0.05);
}

function parseColour(value: string): [number, number, number] | null {
  const v = value.trim().toLowerCase();
  if (v === 'white') return [255, 255, 255];
  if (v === 'black') return [0, 0, 0];
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(v)?.[1];
  if (hex) {
    const full = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex;
    return [0, 2, 4].map((i) => Number.parseInt(full.slice(i, i + 2), 16)) as [
      number,
      number,
      number,
    ];
  }
  const rgb = /^rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)/.exec(v);
  return rgb ? [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])] : null;
}

function luminance([r, g, b]: [number, number, number]): number {
  const channel = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
