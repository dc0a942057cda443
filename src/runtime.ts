// The composition root: builds every part from a Config, and starts and stops them in order.

import { EventEmitter } from 'node:events';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { hashPool } from './accounts/password.ts';
import { type Clock, cryptoRandom, type Random, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { purgePendingContacts } from './contact/contact.ts';
import type { AppContext } from './context.ts';
import { type Db, migrateToLatest, openDatabase } from './db/index.ts';
import type { RouteTable } from './inbox/checks/index.ts';
import { createFaultInjector, type FaultInjector } from './inbox/faults.ts';
import { type Catcher, startSmtpCatcher } from './inbox/smtp.ts';
import { type InboxStore, openInboxStore } from './inbox/store.ts';
import { createInboxTransport } from './inbox/transport.ts';
import { createLogger } from './logger.ts';
import { type Heartbeat, startHeartbeat, workerLiveness } from './mail/heartbeat.ts';
import { outboxOverview } from './mail/outbox-admin.ts';
import { createSmtpTransport, type MailTransport } from './mail/transport.ts';
import { listenForOutbox, OUTBOX_CHANNEL, type OutboxListener } from './mail/wakeup.ts';
import { createOutboxWorker, type OutboxWorker } from './mail/worker.ts';
import { createMetrics, type FunnelEvent, type Metrics } from './metrics.ts';
import { createRateLimits, type RateLimits } from './ratelimit/limiter.ts';
import { buildWebApp } from './web/app.tsx';
import { opsRoutes } from './web/ops-routes.ts';

export interface RuntimeOptions {
  clock?: Clock;
  random?: Random;
  log?: Logger;
  /** Replaces the transport chosen from the configuration (tests inject failing ones). */
  transport?: MailTransport;
  /** Run the outbox worker in this process (the default for `npm start`). */
  worker?: boolean;
  /** Listen for SMTP on INBOX_SMTP_PORT so other apps can use the inbox. */
  smtpCatcher?: boolean;
  workerOptions?: { idlePollMs?: number; baseBackoffMs?: number; concurrency?: number };
  /** Node's process metrics on /metrics; off by default under NODE_ENV=test. */
  processMetrics?: boolean;
  /** Filled with the web app's GET routes (for checking links outside a running inbox). */
  routes?: RouteTable;
}

export interface Runtime {
  config: Config;
  ctx: AppContext;
  db: Db;
  inbox: InboxStore | null;
  /** The inbox's fault injection, shared by its SMTP listener and the in-process transport. */
  faults: FaultInjector | null;
  worker: OutboxWorker | null;
  limits: RateLimits;
  app: FastifyInstance;
  catcher: Catcher | null;
  transport: MailTransport;
  metrics: Metrics;
  listen(): Promise<string>;
  /**
   * `/healthz`, `/readyz` and `/metrics` alone on a port of their own, for a process that serves
   * no web app (`mailproof worker --metrics-port`), so its send counters can be scraped.
   */
  listenOps(port: number): Promise<string>;
  /**
   * Starts the outbox worker, its heartbeat and periodic maintenance (purging unconfirmed
   * contact messages).
   */
  startWorker(): void;
  /**
   * Graceful stop: refuses new requests (503), lets those in flight finish (cut off after
   * SHUTDOWN_REQUEST_GRACE_MS), lets the worker finish its sends and give back the rows it had
   * claimed but not started, then closes the rest.
   */
  close(): Promise<void>;
}

/** How long in-flight requests may run on after shutdown starts (long polls are cut then). */
export const SHUTDOWN_REQUEST_GRACE_MS = 20_000;

/** Domain events (ctx.events) counted by the metrics. */
const FUNNEL_EVENTS: Record<string, (payload: unknown) => FunnelEvent> = {
  'signup.requested': () => 'signup',
  'verification.queued': (payload) =>
    (payload as { purpose?: string } | undefined)?.purpose === 'contact'
      ? 'verification_queued_contact'
      : 'verification_queued_signup',
  'email.verified': () => 'address_verified',
  'contact.submitted': () => 'contact_submitted',
  'contact.accepted': () => 'contact_accepted',
};

export async function createRuntime(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const log = options.log ?? createLogger(config);
  hashPool.resize(config.passwordHashThreads);
  const db = openDatabase(config.databaseUrl);
  const inbox = config.inbox.enabled
    ? openInboxStore(config.dataDir, {
        retain: config.inbox.retainMessages,
        retainSeconds: config.inbox.retainSeconds,
      })
    : null;
  const faults = inbox ? createFaultInjector() : null;
  const transport = options.transport ?? chooseTransport(config, inbox, faults);
  const branding = {
    appName: config.appName,
    brandColor: config.brandColor,
    baseUrl: config.baseUrl,
  };

  let worker: OutboxWorker | null = null;
  const metrics = createMetrics({
    processMetrics: options.processMetrics ?? config.env !== 'test',
    snapshot: async () => {
      const now = ctx.clock.now();
      const [overview, workers] = await Promise.all([
        outboxOverview(db.kysely, now),
        workerLiveness(db.kysely, now),
      ]);
      return { ...overview, workersLive: workers.live };
    },
    onSnapshotError: (error) => log.error({ err: error }, 'reading the outbox for /metrics failed'),
  });
  const ctx: AppContext = {
    config,
    db,
    clock: options.clock ?? systemClock,
    random: options.random ?? cryptoRandom,
    log,
    branding,
    events: new EventEmitter(),
    outboxHandoff: () => worker?.offer() ?? null,
    mailQueued: () => {
      worker?.wake();
      // Workers in other processes hear of it at once through NOTIFY (PostgreSQL); elsewhere
      // they find the row at their next poll (OUTBOX_POLL_INTERVAL).
      if (db.dialect === 'postgres') {
        sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db.kysely).catch((error: unknown) => {
          log.warn({ err: error }, 'could not notify outbox workers; they will poll');
        });
      }
    },
  };
  if (options.worker ?? true) {
    worker = createOutboxWorker({
      db,
      transport,
      clock: ctx.clock,
      random: ctx.random,
      log,
      branding,
      from: config.mail.defaultSender,
      maxAttempts: config.mail.maxAttempts,
      webhookSecret: config.contact.webhookSecret,
      onSent: (row) => metrics.countSend('sent', row.kind),
      onRetry: (row) => metrics.countSend('retried', row.kind),
      onDead: (row) => metrics.countSend('dead', row.kind),
      idlePollMs: config.outbox.pollSeconds * 1000,
      leaseMs: config.outbox.leaseSeconds * 1000,
      ...options.workerOptions,
    });
  }
  for (const [event, toFunnel] of Object.entries(FUNNEL_EVENTS)) {
    ctx.events.on(event, (payload: unknown) => metrics.countFunnel(toFunnel(payload)));
  }
  // Counters every instance shares: in Redis when REDIS_URL is set, else in this database.
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, {
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
      })
    : null;
  redis?.on('error', (error) => log.warn({ err: error }, 'Redis (rate limits) unreachable'));
  const limits = createRateLimits(
    config.rateLimits,
    redis ? { kind: 'redis', client: redis } : db.limitStore,
  );
  const app = await buildWebApp({
    ctx,
    limits,
    inbox,
    faults,
    routes: options.routes,
    metrics,
    workerInProcess: worker !== null,
  });
  let catcher: Catcher | null = null;
  let maintenance: NodeJS.Timeout | null = null;
  let heartbeat: Heartbeat | null = null;
  let opsServer: FastifyInstance | null = null;
  let outboxListener: OutboxListener | null = null;
  const startWorker = () => {
    if (!worker || maintenance) return;
    worker.start();
    if (db.dialect === 'postgres') {
      const listening = worker;
      outboxListener = listenForOutbox(config.databaseUrl, () => listening.wake(), log);
    }
    heartbeat = startHeartbeat({ db: db.kysely, clock: ctx.clock, log, workerId: worker.id });
    maintenance = setInterval(purge, 60_000);
    maintenance.unref();
  };
  const stopWorker = async () => {
    await outboxListener?.close();
    await worker?.stop();
    await heartbeat?.stop();
  };
  const stopWeb = async () => {
    // Requests still running at the deadline (a long poll of the inbox API) are cut off.
    const deadline = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_REQUEST_GRACE_MS);
    deadline.unref();
    try {
      await app.close();
    } finally {
      clearTimeout(deadline);
    }
  };
  const purge = () =>
    purgePendingContacts(ctx).then(
      (count) => count && log.info({ count }, 'purged unconfirmed contact messages'),
      (error: unknown) => log.error({ err: error }, 'purging contact messages failed'),
    );

  return {
    config,
    ctx,
    db,
    inbox,
    faults,
    worker,
    limits,
    app,
    transport,
    metrics,
    get catcher() {
      return catcher;
    },
    startWorker,
    async listenOps(port) {
      const server = Fastify({ loggerInstance: log, return503OnClosing: true });
      server.get('/healthz', async () => ({ status: 'ok' }));
      await server.register(opsRoutes, { ctx, metrics, workerInProcess: worker !== null });
      opsServer = server as unknown as FastifyInstance;
      return server.listen({ port, host: config.host });
    },
    async listen() {
      if (inbox && options.smtpCatcher) {
        catcher = await startSmtpCatcher(inbox, {
          host: config.inbox.smtpHost,
          port: config.inbox.smtpPort,
          faults: faults ?? undefined,
        });
      }
      startWorker();
      return app.listen({ port: config.port, host: config.host });
    },
    async close() {
      if (maintenance) clearInterval(maintenance);
      // The web app and the worker wind down side by side: neither waits for the other.
      await Promise.all([stopWeb(), stopWorker(), opsServer?.close()]);
      await catcher?.close();
      await transport.close();
      redis?.disconnect();
      // A rate-limit table still being made would otherwise run on into a closed pool (or, on
      // MySQL, re-create a database dropped right after the close).
      await limits.ready().catch(() => {});
      await db.close();
      inbox?.close();
    },
  };
}

function chooseTransport(
  config: Config,
  inbox: InboxStore | null,
  faults: FaultInjector | null,
): MailTransport {
  if (config.mail.server) {
    return createSmtpTransport({ ...config.mail, server: config.mail.server });
  }
  if (inbox) return createInboxTransport(inbox, faults ?? undefined);
  throw new Error('No mail transport: set MAIL_SERVER, or enable the inbox (INBOX_ENABLED=true)');
}

export { migrateToLatest };
