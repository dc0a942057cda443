import { z } from 'zod';

export const MAX_EMAIL_LENGTH = 254;

const emailSchema = z.email();

/** Addresses are compared case-insensitively: trimmed and lower-cased. The typed form is kept too. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function isValidEmail(email: string): boolean {
  const trimmed = email.trim();
  return (
    trimmed.length > 0 &&
    trimmed.length <= MAX_EMAIL_LENGTH &&
    !/[\r\n]/.test(email) &&
    emailSchema.safeParse(trimmed).success
  );
}

/** For logs: keeps the first character and the domain's last label only. */
export function redactEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  const tld = email.slice(email.lastIndexOf('.') + 1);
  return `${email[0]}***@***.${tld}`;
}
