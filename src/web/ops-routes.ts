// What load balancers and monitoring read: readiness (database and outbox workers) and metrics.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import type { AppContext } from '../context.ts';
import { type WorkerLiveness, workerLiveness } from '../mail/heartbeat.ts';
import type { Metrics } from '../metrics.ts';
import { adminAuthorized, bearerAuthorized, requestAdminAuth } from './admin-auth.ts';

export interface OpsOptions {
  ctx: AppContext;
  metrics: Metrics;
  /** This process runs an outbox worker (`start`, or a test runtime with one). */
  workerInProcess: boolean;
}

export const opsRoutes: FastifyPluginAsync<OpsOptions> = async (
  app,
  { ctx, metrics, workerInProcess },
) => {
  // 503 only when the database is unreachable: without workers, mail waits in the outbox but the
  // site still works, so taking web instances out of the load balancer would only make it worse.
  // The worker fields are there for people and alerts (see /metrics for the queue itself).
  app.get('/readyz', async (_request, reply) => {
    try {
      await sql`select 1`.execute(ctx.db.kysely);
    } catch {
      return reply.code(503).send({ status: 'unavailable', database: 'unreachable' });
    }
    let workers: WorkerLiveness | null = null;
    try {
      workers = await workerLiveness(ctx.db.kysely, ctx.clock.now());
    } catch (error) {
      // Not migrated yet (no heartbeat table): the database itself answered.
      ctx.log.warn({ err: error }, 'reading worker heartbeats failed');
    }
    return {
      status: 'ready',
      database: 'ok',
      worker: {
        inProcess: workerInProcess,
        live: workers?.live ?? null,
        lastHeartbeatSecondsAgo: workers?.lastBeatSecondsAgo ?? null,
      },
    };
  });

  app.get('/metrics', async (request, reply) => {
    if (!metricsAllowed(ctx, request, reply)) return reply;
    return reply
      .header('Cache-Control', 'no-store')
      .type(metrics.contentType)
      .send(await metrics.render());
  });
};

/**
 * With ADMIN_TOKEN set, a scraper presents it as a bearer token (Prometheus `authorization`) or
 * as the basic-auth password. Without it, metrics are open in development and off (404) in
 * production, where they would otherwise be public.
 */
function metricsAllowed(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): boolean {
  const token = ctx.config.adminToken;
  if (!token) {
    if (!ctx.config.isProduction) return true;
    reply.callNotFound();
    return false;
  }
  const header = request.headers.authorization;
  if (bearerAuthorized(token, header) || adminAuthorized(token, header)) return true;
  requestAdminAuth(reply, 'Mailproof metrics');
  return false;
}
