import type { FastifyBaseLogger, FastifyReply } from 'fastify';

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

export interface RateLimited {
  retryAfterSeconds: number;
  limit: string;
  keyHash: string;
}

/** One warn line per refusal: the limit's name and a prefix of its key's hash, never the key. */
export function logRateLimited(log: FastifyBaseLogger, limited: RateLimited): void {
  log.warn(
    { limit: limited.limit, key: limited.keyHash, retryAfterSeconds: limited.retryAfterSeconds },
    'rate limit reached',
  );
}

export function sendRateLimited(reply: FastifyReply, limited: RateLimited): FastifyReply {
  const { retryAfterSeconds } = limited;
  logRateLimited(reply.log, limited);
  reply.header('Retry-After', String(retryAfterSeconds));
  return sendApiError(
    reply,
    429,
    'rate_limited',
    `Too many requests. Try again in ${retryAfterSeconds} seconds.`,
    { retryAfterSeconds },
  );
}
