// The composition root: builds every part from a Config, and starts and stops them in order.
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
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
import { createSmtpTransport, type MailTransport } from './mail/transport.ts';
import { createOutboxWorker, type OutboxWorker } from './mail/worker.ts';
import { createRateLimits, type RateLimits } from './ratelimit/limiter.ts';
import { buildWebApp } from './web/app.tsx';

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
  workerOptions?: { idlePollMs?: number; baseBackoffMs?: number };
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
  listen(): Promise<string>;
  /** Starts the outbox worker and periodic maintenance (purging unconfirmed contact messages). */
  startWorker(): void;
  close(): Promise<void>;
}

export async function createRuntime(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const log = options.log ?? createLogger(config);
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
  const ctx: AppContext = {
    config,
    db,
    clock: options.clock ?? systemClock,
    random: options.random ?? cryptoRandom,
    log,
    branding,
    events: new EventEmitter(),
    mailQueued: () => worker?.wake(),
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
      ...options.workerOptions,
    });
  }
  const limits = createRateLimits(config.rateLimits);
  const app = await buildWebApp({ ctx, limits, inbox, faults, routes: options.routes });
  let catcher: Catcher | null = null;
  let maintenance: NodeJS.Timeout | null = null;
  const startWorker = () => {
    if (!worker || maintenance) return;
    worker.start();
    maintenance = setInterval(purge, 60_000);
    maintenance.unref();
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
    get catcher() {
      return catcher;
    },
    startWorker,
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
      await app.close();
      await worker?.stop();
      await catcher?.close();
      await transport.close();
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
