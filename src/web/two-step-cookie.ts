// The browser's half of a login waiting for its second step: the challenge token, in a cookie
// like the session's (HttpOnly, SameSite=Lax; `__Host-` and Secure in production) that lives as
// long as the challenge, five minutes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';

function challengeCookie(ctx: AppContext) {
  const secure = ctx.config.isProduction;
  return {
    name: secure ? '__Host-mp_two_step' : 'mp_two_step',
    options: { path: '/', httpOnly: true, sameSite: 'lax' as const, secure },
  };
}

export function setChallengeCookie(
  ctx: AppContext,
  reply: FastifyReply,
  token: string,
  expiresAt: number,
): void {
  const cookie = challengeCookie(ctx);
  reply.setCookie(cookie.name, token, { ...cookie.options, expires: new Date(expiresAt) });
}

export function clearChallengeCookie(ctx: AppContext, reply: FastifyReply): void {
  const cookie = challengeCookie(ctx);
  reply.clearCookie(cookie.name, cookie.options);
}

export function challengeToken(ctx: AppContext, request: FastifyRequest): string {
  return request.cookies[challengeCookie(ctx).name] ?? '';
}
