import type { FastifyReply, FastifyRequest } from 'fastify';
import { type SessionValidation, validateSession } from '../accounts/session.ts';
import type { AppContext } from '../context.ts';

export function sessionCookieName(ctx: AppContext): string {
  // The __Host- prefix pins the cookie to this exact host, over HTTPS, for every path.
  return ctx.config.isProduction ? '__Host-mp_session' : 'mp_session';
}

export function setSessionCookie(
  ctx: AppContext,
  reply: FastifyReply,
  token: string,
  expiresAt: number,
) {
  reply.setCookie(sessionCookieName(ctx), token, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: ctx.config.isProduction,
    expires: new Date(expiresAt),
  });
}

export function clearSessionCookie(ctx: AppContext, reply: FastifyReply) {
  reply.clearCookie(sessionCookieName(ctx), {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: ctx.config.isProduction,
  });
}

export function sessionToken(ctx: AppContext, request: FastifyRequest): string | null {
  return request.cookies[sessionCookieName(ctx)] ?? null;
}

const cache = new WeakMap<FastifyRequest, Promise<SessionValidation>>();

/** Looks the session up once per request, and only for routes that ask. */
export function getAuth(ctx: AppContext, request: FastifyRequest): Promise<SessionValidation> {
  let found = cache.get(request);
  if (!found) {
    const token = sessionToken(ctx, request);
    found = token ? validateSession(ctx, token) : Promise.resolve({ session: null, user: null });
    cache.set(request, found);
  }
  return found;
}
