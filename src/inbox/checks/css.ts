// HTML and CSS support across email clients, from the caniemail data (@jsx-email/doiuse-email).
import { DoIUseEmail } from '@jsx-email/doiuse-email';
import type { CheckLevel } from './types.ts';

/** The clients a template must fully support (SPEC §4): anything they lack is an error. */
const REQUIRED_FAMILIES = ['gmail', 'outlook', 'apple-mail'];

/**
 * Features caniemail lists as unsupported somewhere that every email has and no client loses
 * content over. They are reported, at `info`, with the reason; docs/decisions/010 has the review.
 */
export const ACCEPTED_FEATURES: Record<string, string> = {
  '<body> element':
    'Every HTML message has a body; these clients replace it with their own, so the templates put nothing on it that the content needs.',
  'role attribute':
    'role="presentation" tells screen readers that layout tables are not data; a client that drops it loses nothing else.',
};

export interface CssFeature {
  feature: string;
  level: CheckLevel;
  /** "unsupported" or "partial" (caniemail's "partially supported"). */
  support: 'unsupported' | 'partial';
  clients: string[];
  reason?: string;
}

export interface CssReport {
  /** Share (0–100) of the checked clients that support every feature the message uses. */
  score: number;
  clientsChecked: number;
  features: CssFeature[];
}

const ALL_CLIENTS = new DoIUseEmail({ emailClients: ['*'] }).emailClients;
const FINDING = /^`(.+?)` is (not supported|only partially supported) by `(.+?)`/;

export function checkCss(html: string): CssReport {
  const result = new DoIUseEmail({ emailClients: ['*'] }).check(html);
  const found = new Map<string, CssFeature>();
  const failing = new Set<string>();
  const messages = [...('errors' in result ? result.errors : []), ...result.warnings];
  for (const message of messages) {
    const match = FINDING.exec(message);
    if (!match?.[1] || !match[3]) continue;
    const [feature, supportText, client] = [match[1], match[2], match[3]];
    const support = supportText === 'not supported' ? 'unsupported' : 'partial';
    const key = `${feature}\n${support}`;
    let entry = found.get(key);
    if (!entry) {
      entry = { feature, support, level: 'info', clients: [] };
      found.set(key, entry);
    }
    if (!entry.clients.includes(client)) entry.clients.push(client);
    if (support === 'unsupported' && !ACCEPTED_FEATURES[feature]) failing.add(client);
  }
  const features = [...found.values()].map((entry) => ({
    ...entry,
    ...levelOf(entry),
  }));
  features.sort((a, b) => rank(b.level) - rank(a.level) || a.feature.localeCompare(b.feature));
  const supported = ALL_CLIENTS.length - failing.size;
  return {
    score: Math.round((supported / ALL_CLIENTS.length) * 100),
    clientsChecked: ALL_CLIENTS.length,
    features,
  };
}

function levelOf(entry: CssFeature): { level: CheckLevel; reason?: string } {
  const accepted = ACCEPTED_FEATURES[entry.feature];
  if (entry.support === 'partial') return { level: 'info' };
  if (accepted) return { level: 'info', reason: accepted };
  const required = entry.clients.some((client) =>
    REQUIRED_FAMILIES.includes(client.slice(0, client.indexOf('.'))),
  );
  return { level: required ? 'error' : 'warning' };
}

function rank(level: CheckLevel): number {
  return { error: 3, warning: 2, info: 1, ok: 0 }[level];
}
