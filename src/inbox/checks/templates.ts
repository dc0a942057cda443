// Every email template, rendered with its sample data and composed exactly as the outbox would
// send it, then checked: the gallery shows the result and `npm run check:emails` gates on it.
import type { Config } from '../../config.ts';
import { renderEmail } from '../../mail/render.ts';
import {
  type Branding,
  type EmailTemplate,
  type TemplateName,
  templates,
} from '../../mail/templates/index.ts';
import { composeMime } from '../../mail/transport.ts';
import { type CheckOptions, type MessageChecks, runChecks, TEMPLATE_SPAM_LIMIT } from './index.ts';

export interface TemplateCheck {
  name: string;
  subject: string;
  html: string;
  text: string;
  checks: MessageChecks;
  /** Why the template misses the bar of SPEC §4; empty when it meets it. */
  failures: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: each template has its own data type
export type AnyTemplate = EmailTemplate<any>;

export async function checkTemplate(
  template: AnyTemplate,
  branding: Branding,
  config: Pick<Config, 'mail' | 'baseUrl'>,
  options: CheckOptions,
): Promise<TemplateCheck> {
  const rendered = renderEmail(template, template.sample(branding), branding);
  const raw = await composeMime({
    from: config.mail.defaultSender,
    to: 'preview@example.com',
    subject: rendered.subject,
    html: rendered.html,
    text: rendered.text,
    messageId: `<preview-${template.name}@${new URL(config.baseUrl).hostname}>`,
    replyTo: rendered.replyTo,
    provenance: {
      template: template.name,
      flow: 'preview',
      requestId: null,
      outboxId: '',
      attempt: 1,
    },
  });
  const headerEnd = raw.indexOf('\r\n\r\n');
  const headers = raw
    .subarray(0, headerEnd)
    .toString('utf8')
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .map((line) => ({
      name: line.slice(0, line.indexOf(':')).trim().toLowerCase(),
      value: line.slice(line.indexOf(':') + 1).trim(),
    }));
  const checks = await runChecks(
    { html: rendered.html, text: rendered.text, headers, raw },
    options,
  );
  return { name: template.name, ...rendered, checks, failures: templateFailures(checks, options) };
}

/** The bar every shipped template meets (SPEC §4): no error-level result, spam ≤ 1.0. */
export function templateFailures(checks: MessageChecks, options: CheckOptions): string[] {
  const failures = checks.items
    .filter((item) => item.level === 'error')
    .map((item) => (item.detail ? `${item.title}: ${item.detail}` : item.title));
  if (checks.spam.status === 'scored' && checks.spam.score > TEMPLATE_SPAM_LIMIT) {
    failures.push(
      `SpamAssassin score ${checks.spam.score} is over ${TEMPLATE_SPAM_LIMIT} (${checks.spam.rules.map((r) => `${r.name} ${r.score}`).join(', ')})`,
    );
  }
  if (checks.spam.status === 'failed' && options.spamd) {
    failures.push(`The spam check could not run: ${checks.spam.message}`);
  }
  return failures;
}

export function shippedTemplates(): AnyTemplate[] {
  return (Object.keys(templates) as TemplateName[]).map((name) => templates[name] as AnyTemplate);
}
