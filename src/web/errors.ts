import type { FastifyReply } from 'fastify';

/** The one shape of an API error: `{"error": {"code", "message"}}` with a 4xx status. */
export function sendApiError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...extra } });
}

export function sendRateLimited(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  reply.header('Retry-After', String(retryAfterSeconds));
  return sendApiError(
    reply,
    429,
    'rate_limited',
    `Too many requests. Try again in ${retryAfterSeconds} seconds.`,
    { retryAfterSeconds },
  );
}
