// Every link in a message, checked without fetching anything: links into this app are resolved
// against the app's own routes, and local or private addresses are flagged unless the app itself
// runs on one. The check never opens a connection, so it cannot be turned against the network.
import { isIP } from 'node:net';
import FindMyWay from 'find-my-way';
import { type Document, elements } from './html.ts';
import type { CheckLevel } from './types.ts';

export interface LinkReport {
  url: string;
  /** The link's text in the HTML part, when it has one. */
  text: string | null;
  /** Where the link appears. */
  in: Array<'html' | 'text'>;
  kind: 'app' | 'external' | 'local' | 'mailto' | 'anchor' | 'other';
  level: CheckLevel;
  message: string;
  /** For app links: the route that answers it, e.g. `/verify/:token`. */
  route?: string;
}

/** The GET routes of the app, filled by the web app as it registers them. */
export interface RouteTable {
  add(method: string | string[], url: string): void;
  /** The route pattern that answers a GET of this path, or null. */
  match(path: string): string | null;
}

export function createRouteTable(): RouteTable {
  const router = FindMyWay({ ignoreTrailingSlash: false });
  const patterns = new Set<string>();
  return {
    add(method, url) {
      const methods = Array.isArray(method) ? method : [method];
      if (!methods.includes('GET') || patterns.has(url)) return;
      patterns.add(url);
      router.on('GET', url, () => {}, { pattern: url });
    },
    match(path) {
      const found = router.find('GET', path);
      return found ? ((found.store as { pattern?: string } | null)?.pattern ?? path) : null;
    },
  };
}

export interface LinkCheckOptions {
  baseUrl: string;
  routes: RouteTable;
}

const TEXT_URL = /https?:\/\/[^\s<>"')\]]+/gi;

export function checkLinks(
  document: Document | null,
  text: string | null,
  options: LinkCheckOptions,
): LinkReport[] {
  const found = new Map<string, { text: string | null; in: Set<'html' | 'text'> }>();
  if (document) {
    for (const element of elements(document)) {
      if ((element.name !== 'a' && element.name !== 'area') || element.attribs.href === undefined) {
        continue;
      }
      const url = element.attribs.href.trim();
      const entry = found.get(url) ?? { text: null, in: new Set() };
      entry.in.add('html');
      entry.text ??= textOf(element) || null;
      found.set(url, entry);
    }
  }
  for (const match of (text ?? '').matchAll(TEXT_URL)) {
    const url = match[0].replace(/[.,;:]+$/, '');
    const entry = found.get(url) ?? { text: null, in: new Set() };
    entry.in.add('text');
    found.set(url, entry);
  }
  const base = new URL(options.baseUrl);
  const appIsLocal = isLocalHost(base.hostname);
  return [...found].map(([url, entry]) => ({
    url,
    text: entry.text,
    in: [...entry.in],
    ...classify(url, base, appIsLocal, options.routes),
  }));
}

function classify(
  url: string,
  base: URL,
  appIsLocal: boolean,
  routes: RouteTable,
): Pick<LinkReport, 'kind' | 'level' | 'message' | 'route'> {
  if (url === '') return { kind: 'other', level: 'error', message: 'The link has no address.' };
  if (url.startsWith('#')) {
    return { kind: 'anchor', level: 'info', message: 'A link within the message.' };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) {
    return {
      kind: 'other',
      level: 'error',
      message: 'A relative link: email clients have no page to resolve it against.',
    };
  }
  if (scheme === 'mailto' || scheme === 'tel') {
    return { kind: 'mailto', level: 'ok', message: `A ${scheme}: link.` };
  }
  if (scheme !== 'http' && scheme !== 'https') {
    return {
      kind: 'other',
      level: 'error',
      message: `A ${scheme}: link, which email clients block or cannot open.`,
    };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { kind: 'other', level: 'error', message: 'Not a valid address.' };
  }
  if (parsed.origin === base.origin) {
    const route = routes.match(parsed.pathname);
    if (!route) {
      return {
        kind: 'app',
        level: 'error',
        message: `This app has no page at ${parsed.pathname}.`,
      };
    }
    return { kind: 'app', level: 'ok', message: `Answered by ${route}.`, route };
  }
  if (isLocalHost(parsed.hostname)) {
    return appIsLocal
      ? { kind: 'local', level: 'warning', message: 'A local address outside this app.' }
      : {
          kind: 'local',
          level: 'error',
          message: `A local or private address, while the app runs at ${base.origin}: nobody else can open it.`,
        };
  }
  if (parsed.protocol === 'http:' && base.protocol === 'https:') {
    return { kind: 'external', level: 'warning', message: 'Not https.' };
  }
  return { kind: 'external', level: 'ok', message: 'Another site (not fetched).' };
}

/** localhost, *.localhost, loopback, private, link-local and unspecified addresses. */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local')) return true;
  const version = isIP(host);
  if (version === 4) {
    const [a = 0, b = 0] = host.split('.').map(Number);
    return (
      a === 127 ||
      a === 10 ||
      a === 0 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254)
    );
  }
  if (version === 6) {
    return (
      host === '::1' ||
      host === '::' ||
      host.startsWith('fc') ||
      host.startsWith('fd') ||
      host.startsWith('fe80') ||
      host.startsWith('::ffff:127.')
    );
  }
  return false;
}

function textOf(node: { children?: unknown[]; data?: unknown }): string {
  if (typeof node.data === 'string') return node.data.replace(/\s+/g, ' ').trim();
  return (node.children ?? [])
    .map((child) => textOf(child as { children?: unknown[]; data?: unknown }))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}
