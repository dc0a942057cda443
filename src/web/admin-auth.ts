import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** HTTP basic auth for a fixed user and password (the inbox's INBOX_AUTH), in constant time. */
export function basicAuthorized(
  expected: { user: string; password: string },
  header: string | undefined,
): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const userOk = timingSafeEqual(digest(decoded), digest(`${expected.user}:${expected.password}`));
  return userOk;
}

/** HTTP basic auth: any user name, ADMIN_TOKEN as the password, compared in constant time. */
export function adminAuthorized(adminToken: string, header: string | undefined): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return false;
  const password = decoded.slice(colon + 1);
  return timingSafeEqual(digest(password), digest(adminToken));
}

/** `Authorization: Bearer ADMIN_TOKEN` (how Prometheus presents a token), in constant time. */
export function bearerAuthorized(adminToken: string, header: string | undefined): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7).trim()), digest(adminToken));
}

export function requestAdminAuth(reply: FastifyReply, realm = 'Mailproof admin'): FastifyReply {
  return reply
    .code(401)
    .header('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`)
    .type('text/plain; charset=utf-8')
    .send('Authentication required.');
}
