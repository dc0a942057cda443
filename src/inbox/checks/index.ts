// The checks the inbox runs on every message, and the gallery and `npm run check:emails` on every
// template: HTML/CSS support across clients, links, structure, dark mode and (with spamd) spam.
import { type CssReport, checkCss } from './css.ts';
import { parseHtml } from './html.ts';
import { checkLinks, type LinkReport, type RouteTable } from './links.ts';
import { checkSpam, type SpamRule } from './spam.ts';
import { checkStructure, hasTextPart } from './structure.ts';
import type { CheckItem, CheckLevel } from './types.ts';

export { createRouteTable } from './links.ts';
export type { CheckItem, CheckLevel, CssReport, LinkReport, RouteTable };

/** The most a template may score with SpamAssassin's default rules (SPEC §4). */
export const TEMPLATE_SPAM_LIMIT = 1.0;

export type SpamReport =
  | { status: 'scored'; score: number; threshold: number; isSpam: boolean; rules: SpamRule[] }
  | { status: 'not_configured' }
  | { status: 'failed'; message: string };

export interface MessageChecks {
  errors: number;
  warnings: number;
  /** One line per check, worst first: what a person reads. */
  items: CheckItem[];
  css: CssReport | null;
  links: LinkReport[];
  spam: SpamReport;
}

export interface CheckInput {
  html: string | null;
  text: string | null;
  headers: Array<{ name: string; value: string }>;
  /** The whole message as sent (RFC 5322), for its size and for spamd. */
  raw: Buffer;
}

export interface CheckOptions {
  baseUrl: string;
  routes: RouteTable;
  spamd: { host: string; port: number } | null;
}

export async function runChecks(input: CheckInput, options: CheckOptions): Promise<MessageChecks> {
  const document = input.html === null ? null : parseHtml(input.html);
  const spamPending = options.spamd ? spamReport(input.raw, options.spamd) : null;
  const textPart = hasTextPart(input.raw, input.headers);
  const items = checkStructure({
    document,
    html: input.html,
    text: input.text,
    headers: input.headers,
    size: input.raw.length,
    hasTextPart: textPart,
  });
  const css = input.html === null ? null : checkCss(input.html);
  if (css) items.push(cssItem(css));
  // Without a text part of its own, a parser's text is made from the HTML: nothing new to check.
  const links = checkLinks(document, textPart ? input.text : null, options);
  items.push(linksItem(links));
  const spam: SpamReport = spamPending ? await spamPending : { status: 'not_configured' };
  items.push(spamItem(spam));
  items.sort((a, b) => RANK[b.level] - RANK[a.level]);
  return {
    errors: items.filter((i) => i.level === 'error').length,
    warnings: items.filter((i) => i.level === 'warning').length,
    items,
    css,
    links,
    spam,
  };
}

const RANK: Record<CheckLevel, number> = { error: 3, warning: 2, info: 1, ok: 0 };

function worst(levels: CheckLevel[]): CheckLevel {
  return levels.reduce<CheckLevel>((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok');
}

async function spamReport(raw: Buffer, spamd: { host: string; port: number }): Promise<SpamReport> {
  try {
    const result = await checkSpam(raw, spamd);
    return { status: 'scored', ...result };
  } catch (error) {
    return { status: 'failed', message: (error as Error).message };
  }
}

function cssItem(css: CssReport): CheckItem {
  const level = worst(css.features.map((f) => (f.level === 'info' ? 'ok' : f.level)));
  const failing = css.features.filter((f) => f.level === 'error' || f.level === 'warning');
  return {
    id: 'css',
    level,
    title: `HTML and CSS fully supported by ${css.score}% of ${css.clientsChecked} email clients`,
    detail: failing.length
      ? `Unsupported: ${failing.map((f) => `${f.feature} (${f.clients.join(', ')})`).join('; ')}`
      : undefined,
  };
}

function linksItem(links: LinkReport[]): CheckItem {
  const broken = links.filter((l) => l.level === 'error');
  const level = worst(links.map((l) => (l.level === 'info' ? 'ok' : l.level)));
  return {
    id: 'links',
    level,
    title:
      links.length === 0
        ? 'No links'
        : `${links.length} link${links.length === 1 ? '' : 's'}${broken.length ? `, ${broken.length} with errors` : ''}`,
    detail: broken.length ? broken.map((l) => `${l.url}: ${l.message}`).join(' · ') : undefined,
  };
}

function spamItem(spam: SpamReport): CheckItem {
  switch (spam.status) {
    case 'not_configured':
      return {
        id: 'spam',
        level: 'info',
        title: 'Spam score not checked',
        detail: "Set SPAMD_HOST to score messages with SpamAssassin's spamd.",
      };
    case 'failed':
      return { id: 'spam', level: 'warning', title: 'Spam check failed', detail: spam.message };
    case 'scored': {
      const fired = spam.rules
        .filter((r) => r.score !== 0)
        .map((r) => `${r.name} ${r.score}`)
        .join(', ');
      const level: CheckLevel = spam.isSpam
        ? 'error'
        : spam.score > TEMPLATE_SPAM_LIMIT
          ? 'warning'
          : 'ok';
      return {
        id: 'spam',
        level,
        title: `SpamAssassin score ${spam.score} (spam at ${spam.threshold}; templates at most ${TEMPLATE_SPAM_LIMIT})`,
        detail: fired ? `Rules: ${fired}` : undefined,
      };
    }
  }
}
