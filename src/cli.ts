// `mailproof <command>`: the one entry point for people and process managers.
import { listUsers } from './accounts/user.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { listAcceptedContacts } from './contact/contact.ts';
import { migrateToLatest, openDatabase } from './db/index.ts';
import { checkEmailsCommand } from './inbox/checks/cli.ts';
import { createLogger } from './logger.ts';
import { outboxCounts } from './mail/outbox.ts';
import { createRuntime, type RuntimeOptions } from './runtime.ts';

const HELP = `Usage: mailproof <command>

Commands:
  start            migrate, then serve the web app with the outbox worker and the inbox (npm start)
  serve            serve the web app only (run workers separately)
  worker           send queued email from the outbox
  migrate          apply database migrations
  inbox            run the mail-catching inbox: SMTP on INBOX_SMTP_PORT and the /_inbox pages
  users list       list accounts (newest first)
  outbox status    count pending, sent and dead messages
  contact list     accepted contact messages (newest first)
  check-emails     check every email template (HTML/CSS support, links, structure, spam);
                   --template FILE adds a module's templates; exits 1 when one fails
  help             show this text

Configuration comes from the environment and from .env; see the README.`;

async function main(argv: string[]): Promise<number> {
  const [command = 'help', sub] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  switch (command) {
    case 'start':
      return run(config, { worker: true, smtpCatcher: true }, true);
    case 'serve':
      return run(config, { worker: false, smtpCatcher: false }, false);
    case 'inbox':
      return run(
        { ...config, inbox: { ...config.inbox, enabled: true } },
        { worker: false, smtpCatcher: true },
        false,
      );
    case 'worker':
      return runWorker(config);
    case 'migrate':
      return migrate(config);
    case 'users':
      if (sub === 'list') return usersList(config);
      break;
    case 'outbox':
      if (sub === 'status') return outboxStatus(config);
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
  }
  const runtime = await createRuntime(config, { ...options, log });
  await runtime.listen();
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
  await untilSignal();
  log.info('shutting down');
  await runtime.close();
  return 0;
}

async function runWorker(config: Config): Promise<number> {
  const log = createLogger(config);
  const runtime = await createRuntime(config, { worker: true, log });
  runtime.startWorker();
  console.log(`Mailproof worker ${runtime.worker?.id} is sending from the outbox.`);
  await untilSignal();
  await runtime.close();
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

async function outboxStatus(config: Config): Promise<number> {
  const db = openDatabase(config.databaseUrl);
  try {
    const counts = await outboxCounts(db.kysely);
    console.log(`pending ${counts.pending}\nsent    ${counts.sent}\ndead    ${counts.dead}`);
    return 0;
  } finally {
    await db.close();
  }
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

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      console.error(`mailproof: configuration error: ${error.message}`);
      process.exitCode = 1;
      return;
    }
    console.error(`mailproof: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
