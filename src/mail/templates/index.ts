import type { VNode } from 'preact';
import { contactDelivery } from './contact-delivery.tsx';
import { contactVerify } from './contact-verify.tsx';
import { emailChangeNotice } from './email-change-notice.tsx';
import { emailChangeTaken } from './email-change-taken.tsx';
import { emailChangeVerify } from './email-change-verify.tsx';
import type { Branding } from './layout.tsx';
import { passwordChanged } from './password-changed.tsx';
import { passwordReset } from './password-reset.tsx';
import { signupExisting } from './signup-existing.tsx';
import { twoStepChanged } from './two-step-changed.tsx';
import { verifyEmail } from './verify-email.tsx';

export interface EmailTemplate<Data> {
  name: string;
  subject(data: Data, branding: Branding): string;
  body(data: Data, branding: Branding): VNode;
  sample(branding: Branding): Data;
  /** Where replies go, when not to the sender. */
  replyTo?(data: Data): { name: string; address: string };
}

/** Every email the product sends. Adding a template here puts it in previews and checks. */
export const templates = {
  'verify-email': verifyEmail,
  'signup-existing': signupExisting,
  'contact-verify': contactVerify,
  'contact-delivery': contactDelivery,
  'password-reset': passwordReset,
  'password-changed': passwordChanged,
  'email-change-verify': emailChangeVerify,
  'email-change-notice': emailChangeNotice,
  'email-change-taken': emailChangeTaken,
  'two-step-changed': twoStepChanged,
  // biome-ignore lint/suspicious/noExplicitAny: each template has its own data type
} satisfies Record<string, EmailTemplate<any>>;

export type TemplateName = keyof typeof templates;
export type TemplateData<Name extends TemplateName> = Parameters<
  (typeof templates)[Name]['body']
>[0];

export function isTemplateName(name: string): name is TemplateName {
  return Object.hasOwn(templates, name);
}

export type { Branding };
