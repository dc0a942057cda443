// PostgreSQL cannot hold U+0000 in text, and no field of Mailproof's has a use for it: a body with
// one anywhere is refused while it is parsed, before any route sees it, on every database alike.
// The check runs in the body parsers rather than in a hook, and looks at a parsed body only when
// its text could hold a NUL at all, so requests without one pay nothing for it.
import formbody from '@fastify/formbody';
import { parse as parseQueryString } from 'fast-querystring';
import type { FastifyInstance } from 'fastify';

export const NUL_CHARACTER_CODE = 'MAILPROOF_NUL_CHARACTER';

export function nulRefused(): Error {
  return Object.assign(new Error('text holds the NUL character (U+0000)'), {
    statusCode: 400,
    code: NUL_CHARACTER_CODE,
  });
}

/**
 * True when a request's path or query string holds an encoded NUL (`%00`; a raw one never gets
 * past the HTTP parser). SQLite's LIKE ends a pattern at a NUL, so `?to=%00x` once matched every
 * message in the inbox, and a scoped delete deleted every scope's.
 */
export function nulInUrl(url: string): boolean {
  return url.includes('%00');
}

/** True when a string in a parsed body (fields, array items, nested objects) holds U+0000. */
function holdsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (value === null || typeof value !== 'object' || depth > 8) return false;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (holdsNul(item, depth + 1)) return true;
  }
  return false;
}

/**
 * The error for a parsed JSON body holding a NUL, or null. In JSON text a NUL can only be written
 * `\u0000` (a raw one is not valid JSON), so a body without those six characters is not walked.
 */
export function nulInJson(text: string, value: unknown): Error | null {
  return text.includes('\\u0000') && holdsNul(value) ? nulRefused() : null;
}

/** Form bodies (`application/x-www-form-urlencoded`) up to `bodyLimit` bytes, checked the same way. */
export async function acceptForms(app: FastifyInstance, bodyLimit: number): Promise<void> {
  await app.register(formbody, {
    bodyLimit,
    parser(text) {
      const fields = parseQueryString(text);
      if ((text.includes('%00') || text.includes('\u0000')) && holdsNul(fields)) throw nulRefused();
      return fields;
    },
  });
}
