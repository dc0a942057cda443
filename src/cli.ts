// `mailproof <command>`: the one entry point for people and process managers.
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { endSessionsByOperator } from './accounts/session.ts';
import { turnTwoStepOffByOperator } from './accounts/two-step.ts';
import { listUsers } from './accounts/user.ts';
import { cryptoRandom } from './clock.ts';
import { type Config, ConfigError, loadConfig, parseDuration } from './config.ts';
import { listAcceptedContacts } from './contact/contact.ts';
import { type Db, migrateToLatest, openDatabase, pendingMigrations } from './db/index.ts';
import type { OutboxStatus } from './db/schema.ts';
import { checkEmailsCommand } from './inbox/checks/cli.ts';
import { createLogger } from './logger.ts';
import { workerLiveness } from './mail/heartbeat.ts';
import {
  formatAge,
  listOutbox,
  MAX_LIST_LIMIT,
  OUTBOX_STATUSES,
  outboxOverview,
  purgeOutbox,
  retryDeadLetters,
} from './mail/outbox-admin.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from './runtime.ts';
import { isDatabaseUnavailable } from './web/unavailable.ts';

/** After this, a shutdown that has not finished gives up: leased rows are retried elsewhere. */
const SHUTDOWN_TIMEOUT_MS = 30_000;

const HELP = `Usage: mailproof <command>

Commands:
  start            migrate, then serve the web app with the outbox worker and the inbox (npm start)
  serve            serve the web app only (run workers separately)
  worker [--metrics-port PORT]
                   send queued email from the outbox; with a port, serve /metrics, /healthz
                   and /readyz there (on HOST)
  migrate          apply database migrations
  inbox            the web app with the inbox on and SMTP on INBOX_SMTP_PORT, no worker
  users list       list accounts (newest first)
  users logout EMAIL | --all
                   end every session of one account, or of every account
  two-step off EMAIL
                   turn off two-step sign-in for an account whose owner lost both the app and
                   the recovery codes (check who is asking first); the owner is emailed
  outbox status    count pending, sent and dead messages; oldest pending; live workers
  outbox list [--status pending|sent|dead] [--limit N]
                   messages newest first (recipients redacted, contents never shown)
  outbox retry ID | --all-dead
                   put a dead letter (or all) back in the queue with fresh attempts
  outbox purge [--sent-older-than 7d] [--dead]
                   delete sent messages older than the age, and/or every dead letter
  contact list     accepted contact messages (newest first)
  check-emails     check every email template (HTML/CSS support, links, structure, spam);
                   --template FILE adds a module's templates; exits 1 when one fails
  help             show this text

Configuration comes from the environment and from .env; see the README.`;

/** Commands that take no arguments, and how many words each is. */
const NO_ARGUMENTS: Record<string, number> = {
  start: 1,
  serve: 1,
  inbox: 1,
  migrate: 1,
  'users list': 2,
  'contact list': 2,
};

async function main(argv: string[]): Promise<number> {
  const [command = 'help', sub] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  // Commands that take no arguments refuse one instead of ignoring it (`serve --port 4000` would
  // otherwise start on PORT as if nothing had been said).
  const name = command in NO_ARGUMENTS ? command : `${command} ${sub}`;
  const words = NO_ARGUMENTS[name];
  if (words !== undefined && argv.length > words) {
    console.error(
      `mailproof ${name}: unexpected argument "${argv[words]}"; settings come from the environment and .env (PORT=4000, not --port 4000)\n\n${HELP}`,
    );
    return 2;
  }
  const config = loadConfig();
  switch (command) {
    case 'start':
      return run(config, { worker: true, smtpCatcher: true }, true);
    case 'serve':
      return run(config, { worker: false, smtpCatcher: false }, false);
    case 'inbox':
      // The command turns the inbox on whatever INBOX_ENABLED says, so it must also ask for the
      // password that INBOX_ENABLED=true asks for in production: caught mail holds live links.
      if (config.env === 'production' && !config.inbox.auth) {
        throw new ConfigError(
          'INBOX_AUTH must be set (user:password) to run `mailproof inbox` in production',
        );
      }
      return run(
        { ...config, inbox: { ...config.inbox, enabled: true } },
        { worker: false, smtpCatcher: true },
        false,
      );
    case 'worker':
      return runWorker(config, argv.slice(1));
    case 'migrate':
      return migrate(config);
    case 'users':
      if (sub === 'list') return usersList(config);
      if (sub === 'logout') return usersLogout(config, argv.slice(2));
      break;
    case 'two-step':
      if (sub === 'off') return twoStepOff(config, argv.slice(2));
      break;
    case 'outbox':
      if (sub && sub in OUTBOX_COMMANDS) return outboxCommand(config, sub, argv.slice(2));
      break;
    case 'contact':
      if (sub === 'list') return contactList(config);
      break;
    case 'check-emails':
      return checkEmailsCommand(config, argv.slice(1));
  }
  console.error(
    `mailproof: unknown command "${[command, sub].filter(Boolean).join(' ')}"\n\n${HELP}`,
  );
  return 2;
}

async function migrate(config: Config): Promise<number> {
  const db = openDatabase(config.databaseUrl);
  try {
    const applied = await migrateToLatest(db);
    console.log(
      applied.length ? `Applied migrations: ${applied.join(', ')}` : 'Database is up to date.',
    );
    return 0;
  } finally {
    await db.close();
  }
}

async function run(
  config: Config,
  options: RuntimeOptions,
  migrateFirst: boolean,
): Promise<number> {
  const log = createLogger(config);
  if (migrateFirst) {
    const db = openDatabase(config.databaseUrl);
    try {
      await migrateToLatest(db);
    } finally {
      await db.close();
    }
  } else {
    await refuseUnmigrated(config, log);
  }
  const runtime = await createRuntime(config, { ...options, log });
  await startOrClose(runtime, () => runtime.listen());
  const base = config.baseUrl;
  const lines = [`Mailproof is running at ${base}`];
  if (runtime.inbox) lines.push(`  Inbox:       ${base}/_inbox`);
  if (runtime.catcher)
    lines.push(`  SMTP inbox:  ${config.inbox.smtpHost}:${runtime.catcher.port}`);
  lines.push(
    `  Mail:        ${runtime.transport.name === 'smtp' ? `SMTP via ${config.mail.server}` : 'delivered to the built-in inbox'}`,
  );
  lines.push(
    `  Worker:      ${runtime.worker ? 'in this process' : 'separate (mailproof worker)'}`,
  );
  if (!config.rateLimits.enabled)
    log.warn('RATE_LIMITS=off: every rate limit is disabled (for load tests only)');
  console.log(lines.join('\n'));
  return shutDownOn(await untilSignal(), runtime, log);
}

async function runWorker(config: Config, args: string[]): Promise<number> {
  let values: { 'metrics-port'?: string };
  try {
    ({ values } = parseArgs({ args, options: { 'metrics-port': { type: 'string' } } }));
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    console.error(`mailproof worker: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  const metricsPort = values['metrics-port'];
  if (metricsPort !== undefined && !/^\d{1,5}$/.test(metricsPort)) {
    console.error(`mailproof worker: --metrics-port must be a port number, got "${metricsPort}"`);
    return 2;
  }
  const log = createLogger(config);
  await refuseUnmigrated(config, log);
  const runtime = await createRuntime(config, { worker: true, log });
  runtime.startWorker();
  console.log(`Mailproof worker ${runtime.worker?.id} is sending from the outbox.`);
  if (metricsPort !== undefined) {
    const address = await startOrClose(runtime, () => runtime.listenOps(Number(metricsPort)));
    console.log(`  Metrics:     ${address}/metrics (also /healthz, /readyz)`);
  }
  return shutDownOn(await untilSignal(), runtime, log);
}

/**
 * `serve`, `inbox` and `worker` leave migrating to `mailproof migrate` (one step of a deploy, not
 * one per process): on a database that lacks migrations they would start, say they are ready and
 * answer every request with a 500. They stop at once instead, saying what to run. A database that
 * cannot be reached yet is left to the runtime, which retries and reports it on /readyz.
 */
async function refuseUnmigrated(config: Config, log: Logger): Promise<void> {
  const db = openDatabase(config.databaseUrl);
  let pending: string[];
  try {
    pending = await pendingMigrations(db);
  } catch (error) {
    log.warn({ err: error }, 'could not check the database migrations; starting anyway');
    return;
  } finally {
    await db.close();
  }
  if (pending.length > 0) {
    throw new Error(
      `the database lacks ${pending.length} migration${pending.length === 1 ? '' : 's'} (the newest: ${pending.at(-1)}); run \`npx mailproof migrate\` first`,
    );
  }
}

/**
 * Runs `start` (listening on a port); if it fails (the port is taken, say), closes whatever the
 * runtime had already started (the SMTP catcher, the worker, the database) so that the process
 * ends with the error instead of running on without its web server.
 */
async function startOrClose<T>(runtime: Runtime, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    await runtime.close().catch(() => {});
    throw error;
  }
}

/**
 * Stops taking requests, lets those in flight and the sends in progress finish, gives back the
 * outbox rows claimed but not started, and closes. Past SHUTDOWN_TIMEOUT_MS it exits 1.
 */
async function shutDownOn(signal: string, runtime: Runtime, log: Logger): Promise<number> {
  log.info({ signal }, 'shutting down: finishing requests and sends in progress');
  const giveUp = setTimeout(() => {
    log.error(`shutdown took over ${SHUTDOWN_TIMEOUT_MS / 1000}s; exiting without finishing`);
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  giveUp.unref();
  await runtime.close();
  clearTimeout(giveUp);
  log.info('shut down cleanly');
  return 0;
}

async function usersList(config: Config): Promise<number> {
  const db = openDatabase(config.databaseUrl);
  try {
    const users = await listUsers(db.kysely);
    for (const u of users) {
      const verified = u.email_verified_at
        ? new Date(u.email_verified_at).toISOString()
        : 'unverified';
      console.log(`${u.id}\t${u.email}\t${verified}\t${new Date(u.created_at).toISOString()}`);
    }
    if (users.length === 0) console.log('No accounts yet.');
    return 0;
  } finally {
    await db.close();
  }
}

async function usersLogout(config: Config, args: string[]): Promise<number> {
  const [target] = args;
  if (!target || args.length > 1) {
    console.error('mailproof: users logout needs one address, or --all');
    return 2;
  }
  const count = await withDatabase(config, (db) =>
    endSessionsByOperator(db.kysely, target === '--all' ? 'all' : { email: target }),
  );
  if (count === null) {
    console.error('mailproof: no account has that address');
    return 1;
  }
  console.log(count === 1 ? '1 session ended.' : `${count} sessions ended.`);
  return 0;
}

/** Prints no address: the operator typed it, and terminals and CI logs keep what they show. */
async function twoStepOff(config: Config, args: string[]): Promise<number> {
  const [email] = args;
  // An address may start with "-" (-jo@example.com is valid); an option-like word without "@" is
  // a mistake, such as --help.
  if (!email || args.length > 1 || (email.startsWith('-') && !email.includes('@'))) {
    console.error('mailproof: two-step off needs one address');
    return 2;
  }
  const turnedOff = await withDatabase(config, (db) =>
    turnTwoStepOffByOperator(db.kysely, config, email, { random: cryptoRandom, now: Date.now() }),
  );
  if (!turnedOff) {
    console.error('mailproof: no account with that address has two-step sign-in on');
    return 1;
  }
  console.log('Two-step sign-in is off for that account; its owner is told by email.');
  return 0;
}

async function withDatabase<T>(config: Config, use: (db: Db) => Promise<T>): Promise<T> {
  const db = openDatabase(config.databaseUrl);
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

const OUTBOX_COMMANDS: Record<string, (config: Config, args: string[]) => Promise<number>> = {
  status: outboxStatus,
  list: outboxList,
  retry: outboxRetry,
  purge: outboxPurge,
};

async function outboxCommand(config: Config, sub: string, args: string[]): Promise<number> {
  try {
    return await (OUTBOX_COMMANDS[sub] ?? outboxStatus)(config, args);
  } catch (error) {
    if (
      !(error instanceof UsageError) &&
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true
    ) {
      throw error;
    }
    console.error(`mailproof outbox ${sub}: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
}

async function outboxStatus(config: Config, args: string[]): Promise<number> {
  parseArgs({ args, options: {}, strict: true });
  return withDatabase(config, async (db) => {
    const now = Date.now();
    const { counts, oldestPendingSeconds } = await outboxOverview(db.kysely, now);
    const workers = await workerLiveness(db.kysely, now).catch(() => null);
    console.log(`pending ${counts.pending}\nsent    ${counts.sent}\ndead    ${counts.dead}`);
    console.log(
      `oldest pending: ${oldestPendingSeconds === null ? 'none' : formatAge(oldestPendingSeconds)}`,
    );
    console.log(
      `workers live:   ${workers ? workers.live : 'unknown (run mailproof migrate)'}${
        workers?.lastBeatSecondsAgo != null
          ? ` (last heartbeat ${formatAge(workers.lastBeatSecondsAgo)} ago)`
          : ''
      }`,
    );
    return 0;
  });
}

async function outboxList(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { status: { type: 'string' }, limit: { type: 'string', default: '50' } },
    strict: true,
  });
  const status = values.status as OutboxStatus | undefined;
  if (status !== undefined && !OUTBOX_STATUSES.includes(status)) {
    throw new UsageError(`--status must be pending, sent or dead, got "${status}"`);
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  return withDatabase(config, async (db) => {
    const entries = await listOutbox(db.kysely, { status, limit });
    const now = Date.now();
    if (entries.length === 0) {
      console.log(status ? `No ${status} messages.` : 'The outbox is empty.');
      return 0;
    }
    console.log(
      ['id', 'status', 'attempts', 'template', 'flow', 'age', 'to', 'last error'].join('\t'),
    );
    for (const e of entries) {
      const age = formatAge((now - e.createdAt) / 1000);
      const fields = [e.id, e.status, e.attempts, e.template, e.flow, age, e.recipient];
      console.log([...fields, e.lastError ?? '-'].join('\t'));
    }
    return 0;
  });
}

/**
 * Message ids are 22 characters of base64url (newId), so one in 64 starts with "-" and one in
 * 4,096 with "--", and would read as an option. An argument of exactly that shape is an id,
 * passed after "--"; `retry`'s one option, `--all-dead`, is not of that shape.
 */
function idsAsPositionals(args: string[]): string[] {
  if (args.includes('--')) return args;
  const isId = (arg: string) => /^-[A-Za-z0-9_-]{21}$/.test(arg);
  const ids = args.filter(isId);
  return ids.length ? [...args.filter((arg) => !isId(arg)), '--', ...ids] : args;
}

async function outboxRetry(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: idsAsPositionals(args),
    options: { 'all-dead': { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const id = positionals[0];
  if (values['all-dead'] === Boolean(id) || positionals.length > 1) {
    throw new UsageError('give one message id, or --all-dead');
  }
  return withDatabase(config, async (db) => {
    const target = id ? { id } : ({ allDead: true } as const);
    const count = await retryDeadLetters(db.kysely, target, Date.now());
    if (id && count === 0) {
      console.error(`mailproof: no dead letter with id ${id} (only dead messages can be retried)`);
      return 1;
    }
    console.log(
      `Re-queued ${count} dead letter${count === 1 ? '' : 's'}; a worker sends them now.`,
    );
    return 0;
  });
}

async function outboxPurge(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'sent-older-than': { type: 'string' },
      dead: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const ageText = values['sent-older-than'];
  const ageSeconds = ageText === undefined ? null : parseDuration(ageText);
  if (ageText !== undefined && ageSeconds === null) {
    throw new UsageError(
      `--sent-older-than must be a duration such as 7d, 12h or 30m, got "${ageText}"`,
    );
  }
  if (ageSeconds === null && !values.dead) {
    throw new UsageError('say what to delete: --sent-older-than AGE and/or --dead');
  }
  return withDatabase(config, async (db) => {
    const result = await purgeOutbox(
      db.kysely,
      { sentOlderThanMs: ageSeconds === null ? undefined : ageSeconds * 1000, dead: values.dead },
      Date.now(),
    );
    console.log(`Deleted ${result.sent} sent message(s) and ${result.dead} dead letter(s).`);
    return 0;
  });
}

async function contactList(config: Config): Promise<number> {
  const db = openDatabase(config.databaseUrl);
  try {
    const messages = await listAcceptedContacts(db.kysely, 200);
    for (const m of messages) {
      const when = new Date(m.accepted_at ?? m.created_at).toISOString();
      const oneLine = m.message.replace(/\s+/g, ' ').slice(0, 120);
      console.log(`${when}\t${m.name} <${m.email}>\t${oneLine}`);
    }
    if (messages.length === 0) console.log('No accepted contact messages yet.');
    return 0;
  } finally {
    await db.close();
  }
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Resolves on the first SIGTERM or SIGINT; a second one ends the process at once. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      for (const name of STOP_SIGNALS) {
        process.off(name, first);
        process.once(name, () => {
          console.error(`mailproof: ${name} during shutdown; exiting without finishing`);
          process.exit(1);
        });
      }
      resolve(signal);
    };
    for (const name of STOP_SIGNALS) process.on(name, first);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed; a handle someone forgot must not keep a stopped service running.
    setTimeout(() => process.exit(code), 5000).unref();
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      console.error(`mailproof: configuration error: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(
      isDatabaseUnavailable(error)
        ? `mailproof: cannot reach the database (DATABASE_URL): ${message}`
        : `mailproof: ${message}`,
    );
    process.exitCode = 1;
    // A failed start has closed what it opened; a handle left over must not keep it running.
    setTimeout(() => process.exit(1), 5000).unref();
  },
);
