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

const toText = compile({
  wordwrap: 78,
  selectors: [
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
  ],
});

/** Renders a shipped template by name, or a template object (a deployer's own, being checked). */
export function renderEmail(
  // biome-ignore lint/suspicious/noExplicitAny: each template has its own data type
  nameOrTemplate: string | EmailTemplate<any>,
  data: unknown,
  branding: Branding,
): RenderedEmail {
  if (typeof nameOrTemplate === 'string' && !isTemplateName(nameOrTemplate)) {
    throw new Error(`Unknown email template "${nameOrTemplate}"`);
  }
  const template = (
    typeof nameOrTemplate === 'string' ? templates[nameOrTemplate as TemplateName] : nameOrTemplate
  ) as {
    subject(data: unknown, branding: Branding): string;
    body(data: unknown, branding: Branding): Parameters<typeof render>[0];
    replyTo?(data: unknown): { name: string; address: string };
  };
  const subject = template.subject(data, branding);
  const body = render(template.body(data, branding));
  const html = `<!DOCTYPE html><html lang="en" dir="ltr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><meta name="supported-color-schemes" content="light dark"><title>${escapeHtml(subject)}</title></head><body style="margin:0;padding:0;background-color:#f4f5f7;">${body}</body></html>`;
  const replyTo = template.replyTo?.(data);
  return { subject, html, text: toText(html), ...(replyTo ? { replyTo } : {}) };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
