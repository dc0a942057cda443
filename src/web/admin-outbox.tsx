// The operator's outbox page, behind HTTP basic auth with ADMIN_TOKEN: counts, dead letters with
// a Retry button each, "Retry all dead", and a purge form. The CLI does the same from a shell.

import type { FastifyPluginAsync } from 'fastify';
import type { AppContext } from '../context.ts';
import { workerLiveness } from '../mail/heartbeat.ts';
import { listOutbox, outboxOverview, purgeOutbox, retryDeadLetters } from '../mail/outbox-admin.ts';
import { adminAuthorized, requestAdminAuth } from './admin-auth.ts';
import { acceptForms } from './body-checks.ts';
import { pageContext, sendPage, setFlash } from './pages.tsx';
import { AdminOutboxPage } from './views/admin-outbox.tsx';

const DEAD_SHOWN = 100;
const DAY_MS = 86_400_000;

type Form = Record<string, string | string[] | undefined>;

function field(body: unknown, name: string): string {
  const value = (body as Form | undefined)?.[name];
  return typeof value === 'string' ? value.trim() : '';
}

export const adminOutboxRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  await acceptForms(app, 4 * 1024);
  // Authentication first, so a stranger's POST is a 401 and never reaches the CSRF check.
  app.addHook('onRequest', async (request, reply) => {
    if (!ctx.config.adminToken) return reply.callNotFound();
    if (!adminAuthorized(ctx.config.adminToken, request.headers.authorization)) {
      return requestAdminAuth(reply);
    }
  });
  const csrf = { preHandler: app.csrfProtection };
  const backToPage = '/admin/outbox';

  app.get('/admin/outbox', async (request, reply) => {
    const now = ctx.clock.now();
    const db = ctx.db.kysely;
    const [overview, dead, workers] = await Promise.all([
      outboxOverview(db, now),
      listOutbox(db, { status: 'dead', limit: DEAD_SHOWN }),
      workerLiveness(db, now).catch(() => null),
    ]);
    reply.header('Cache-Control', 'no-store');
    return sendPage(
      reply,
      <AdminOutboxPage
        ctx={await pageContext(ctx, request, reply)}
        overview={overview}
        workers={workers}
        dead={dead}
        deadTotal={overview.counts.dead}
        now={now}
      />,
    );
  });

  app.post('/admin/outbox/retry', csrf, async (request, reply) => {
    const id = field(request.body, 'id');
    const all = field(request.body, 'all') === 'dead';
    if (!all && !id) {
      setFlash(ctx, reply, { kind: 'error', message: 'Choose a dead letter to retry.' });
      return reply.redirect(backToPage, 303);
    }
    const count = await retryDeadLetters(
      ctx.db.kysely,
      all ? { allDead: true } : { id },
      ctx.clock.now(),
    );
    if (count > 0) ctx.mailQueued();
    setFlash(
      ctx,
      reply,
      count > 0
        ? { kind: 'success', message: `Re-queued ${plural(count, 'message')}.` }
        : { kind: 'info', message: 'Nothing to retry: no such dead letter.' },
    );
    return reply.redirect(backToPage, 303);
  });

  app.post('/admin/outbox/purge', csrf, async (request, reply) => {
    const daysText = field(request.body, 'sent_older_than_days');
    const dead = field(request.body, 'dead') === 'on';
    const days = daysText === '' ? null : Number(daysText);
    if (days !== null && (!Number.isInteger(days) || days < 0 || days > 3650)) {
      setFlash(ctx, reply, { kind: 'error', message: 'Enter a whole number of days (0–3650).' });
      return reply.redirect(backToPage, 303);
    }
    const result = await purgeOutbox(
      ctx.db.kysely,
      { sentOlderThanMs: days === null ? undefined : days * DAY_MS, dead },
      ctx.clock.now(),
    );
    setFlash(ctx, reply, {
      kind: 'success',
      message: `Deleted ${plural(result.sent, 'sent message')} and ${plural(result.dead, 'dead letter')}.`,
    });
    return reply.redirect(backToPage, 303);
  });
};

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
