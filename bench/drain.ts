// The `drain` and `multi` phases of bench/run.ts (see docs/performance.md, "Outbox drain and
// several processes"):
//
// - drain: an outbox filled with N verification emails by the domain code, then
//   `mailproof worker` started against it with a local SMTP sink (bench/sink.ts) as MAIL_SERVER;
//   messages/s from the first row sent until every row is `sent`, the worker's CPU per message,
//   and every Message-ID checked to have reached the sink exactly once. The sink's own ceiling is
//   a nodemailer pool (5 connections, the same message) blasting it from the bench process.
// - multi: two `mailproof serve` processes and one `mailproof worker` on one database, with one
//   wrk per server port running the sign-up script at the same time, against the hashing ceiling.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { hashPassword } from '../src/accounts/password.ts';
import { cryptoRandom } from '../src/clock.ts';
import { type Db, migrateToLatest, openDatabase } from '../src/db/index.ts';
import { enqueueEmail } from '../src/mail/outbox.ts';
import { renderEmail } from '../src/mail/render.ts';
import {
  type Child,
  type CpuSample,
  type CpuUse,
  cpuSample,
  cpuUse,
  freePort,
  median,
  portAcceptsConnections,
  runWrk,
  sleep,
  startChild,
  type WrkRun,
  waitUntil,
} from './support.ts';

export const POSTGRES_URL =
  process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DRAIN_MESSAGES = 10_000;
const ENQUEUE_TRANSACTION = 2000;
const SINK_CEILING_MESSAGES = 5000;
const POOL_CONNECTIONS = 5;
const DRAIN_TARGET_PER_SECOND = 1000;
const MULTI_CONNECTIONS_PER_SERVER = 4;
const MULTI_SECONDS = 8;
const MESSAGE_ID_DOMAIN = '127.0.0.1';
const BASE_URL = 'http://127.0.0.1:9';

export interface PhaseRow {
  figure: string;
  value: string;
  ceiling: string;
  ratio: string;
  target: string;
  pass: boolean | null;
}

export interface PhaseContext {
  root: string;
  out: string;
  tmpDir: string;
  runId: string;
  cores: number;
  lua: string;
  children: Child[];
  /** Where to write V8 CPU profiles of the worker (and servers), when --profile is given. */
  profileDir: string | null;
  log(message: string): void;
}

interface Sink {
  port: number;
  child: Child;
  stats(): Promise<SinkStats>;
  ids(): Promise<Set<string>>;
  reset(): Promise<void>;
}

interface SinkStats {
  messages: number;
  distinct: number;
  duplicates: number;
  withoutId: number;
}

async function startSink(ctx: PhaseContext): Promise<Sink> {
  const [port, controlPort] = await Promise.all([freePort(), freePort()]);
  const child = startChild(
    'smtp sink',
    process.execPath,
    ['--import', 'tsx', 'bench/sink.ts', String(port), String(controlPort)],
    { cwd: ctx.root, env: process.env, logFile: path.join(ctx.out, 'sink.log') },
  );
  ctx.children.push(child);
  await waitUntil('the SMTP sink', () => portAcceptsConnections(controlPort), {
    timeoutMs: 30_000,
    child,
  });
  const control = `http://127.0.0.1:${controlPort}`;
  return {
    port,
    child,
    stats: async () => (await (await fetch(`${control}/stats`)).json()) as SinkStats,
    ids: async () => new Set((await (await fetch(`${control}/ids`)).text()).split('\n')),
    reset: async () => {
      await fetch(`${control}/reset`, { method: 'POST' });
    },
  };
}

/** A fresh database: a SQLite file, or a new PostgreSQL schema (null when none answers). */
async function freshDatabase(
  ctx: PhaseContext,
  kind: 'sqlite' | 'postgres',
  name: string,
): Promise<{ url: string; label: string; drop(): Promise<void> } | null> {
  if (kind === 'sqlite') {
    const file = path.join(ctx.tmpDir, `${name}.db`);
    return { url: `sqlite:${file}`, label: 'SQLite', drop: async () => {} };
  }
  const schema = `bench_${name}_${ctx.runId}`.replaceAll('-', '_');
  const admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
  } catch (error) {
    ctx.log(`PostgreSQL at ${POSTGRES_URL} not usable (${(error as Error).message}); skipped`);
    await admin.end().catch(() => {});
    return null;
  }
  await admin.end();
  return {
    url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    label: 'PostgreSQL',
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

function mailproofEnv(databaseUrl: string, sinkPort: number, extra: Record<string, string>) {
  return {
    ...process.env,
    NODE_ENV: 'development',
    DATABASE_URL: databaseUrl,
    BASE_URL,
    MAIL_SERVER: '127.0.0.1',
    MAIL_PORT: String(sinkPort),
    INBOX_ENABLED: 'false',
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

function verifyPayload(i: number) {
  return {
    url: `${BASE_URL}/verify/${randomBytes(32).toString('base64url')}`,
    code: String(10_000_000 + (i % 89_999_999)),
    linkMinutes: 60,
    codeMinutes: 10,
  };
}

/** N verification emails, queued by enqueueEmail in transactions of 2,000. */
async function fillOutbox(db: Db, count: number, prefix: string): Promise<number> {
  const started = performance.now();
  for (let start = 0; start < count; start += ENQUEUE_TRANSACTION) {
    const size = Math.min(ENQUEUE_TRANSACTION, count - start);
    const now = Date.now();
    await db.kysely.transaction().execute(async (trx) => {
      for (let i = start; i < start + size; i++) {
        await enqueueEmail(trx, {
          to: `${prefix}${i}@bench.test`,
          template: 'verify-email',
          data: verifyPayload(i),
          flow: 'signup',
          now,
          random: cryptoRandom,
          messageIdDomain: MESSAGE_ID_DOMAIN,
        });
      }
    });
  }
  if (db.dialect === 'sqlite') await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db.kysely);
  return (performance.now() - started) / 1000;
}

async function statusCounts(db: Db) {
  const rows = await db.kysely
    .selectFrom('outbox')
    .select(['status', db.kysely.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  const counts = { pending: 0, sent: 0, dead: 0 };
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

function cpuBetween(
  before: CpuSample | null,
  after: CpuSample | null,
  messages: number,
  seconds: number,
): CpuUse | null {
  return cpuUse(before, after, messages, seconds);
}

interface DrainRun {
  database: string;
  messages: number;
  enqueueSeconds: number;
  /** From the worker's spawn to the first `sent` row seen (start-up, first claim, first sends). */
  startupSeconds: number;
  /** Sent rows already there when the clock started. */
  sentAtClockStart: number;
  /** From the first `sent` row seen to every row sent, polled every 50 ms. */
  seconds: number;
  perSecond: number;
  /** The same from the rows' own sent_at stamps: (N − 1) ÷ (last − first). */
  sentAtSpanSeconds: number;
  perSecondBySentAt: number;
  dead: number;
  workerCpu: CpuUse | null;
  sinkCpu: CpuUse | null;
  sink: SinkStats;
  missing: number;
  duplicates: number;
  command: string;
}

async function drainOnce(
  ctx: PhaseContext,
  sink: Sink,
  kind: 'sqlite' | 'postgres',
): Promise<DrainRun | null> {
  const database = await freshDatabase(ctx, kind, 'drain');
  if (!database) return null;
  const db = openDatabase(database.url);
  let worker: Child | null = null;
  try {
    await migrateToLatest(db);
    const enqueueSeconds = await fillOutbox(db, DRAIN_MESSAGES, `drain-${ctx.runId}-`);
    ctx.log(
      `drain (${database.label}): ${DRAIN_MESSAGES} emails queued in ${enqueueSeconds.toFixed(1)} s`,
    );
    await sink.reset();
    const env = mailproofEnv(database.url, sink.port, {
      DATA_DIR: path.join(ctx.tmpDir, `drain-data-${kind}`),
    });
    const args = [
      ...(ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`] : []),
      'bin/mailproof.js',
      'worker',
    ];
    const spawned = performance.now();
    worker = startChild(`mailproof worker (drain, ${kind})`, process.execPath, args, {
      cwd: ctx.root,
      env,
      logFile: path.join(ctx.out, `drain-worker-${kind}.log`),
    });
    ctx.children.push(worker);
    const workerPid = worker.process.pid;
    const sinkPid = sink.child.process.pid;
    let t0 = 0;
    let sentAtClockStart = 0;
    let workerBefore: CpuSample | null = null;
    let sinkBefore: CpuSample | null = null;
    let counts = { pending: DRAIN_MESSAGES, sent: 0, dead: 0 };
    const deadline = spawned + 180_000;
    for (;;) {
      if (worker.exited) throw new Error(`the worker exited; see ${worker.logFile}`);
      if (performance.now() > deadline) throw new Error('the outbox did not drain in 180 s');
      counts = await statusCounts(db);
      const now = performance.now();
      if (!t0 && counts.sent + counts.dead > 0) {
        t0 = now;
        sentAtClockStart = counts.sent + counts.dead;
        workerBefore = cpuSample(workerPid);
        sinkBefore = cpuSample(sinkPid);
      }
      if (counts.sent + counts.dead >= DRAIN_MESSAGES) break;
      await sleep(50);
    }
    const t1 = performance.now();
    const workerAfter = cpuSample(workerPid);
    const sinkAfter = cpuSample(sinkPid);
    const seconds = (t1 - t0) / 1000;
    const measured = DRAIN_MESSAGES - sentAtClockStart;
    const span = await db.kysely
      .selectFrom('outbox')
      .select((eb) => [eb.fn.min('sent_at').as('first'), eb.fn.max('sent_at').as('last')])
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow();
    const sentAtSpanSeconds = (Number(span.last) - Number(span.first)) / 1000;
    await worker.stop();
    // Every queued Message-ID must have reached the sink, and exactly once.
    const [stats, ids, queued] = await Promise.all([
      sink.stats(),
      sink.ids(),
      db.kysely.selectFrom('outbox').select('message_id').execute(),
    ]);
    const missing = queued.filter((row) => !ids.has(row.message_id)).length;
    const run: DrainRun = {
      database: database.label,
      messages: DRAIN_MESSAGES,
      enqueueSeconds,
      startupSeconds: (t0 - spawned) / 1000,
      sentAtClockStart,
      seconds,
      perSecond: measured / seconds,
      sentAtSpanSeconds,
      perSecondBySentAt: (DRAIN_MESSAGES - 1) / sentAtSpanSeconds,
      dead: counts.dead,
      workerCpu: cpuBetween(workerBefore, workerAfter, measured, seconds),
      sinkCpu: cpuBetween(sinkBefore, sinkAfter, measured, seconds),
      sink: stats,
      missing,
      duplicates: stats.duplicates,
      command: `MAIL_SERVER=127.0.0.1 MAIL_PORT=SINK_PORT NODE_ENV=development INBOX_ENABLED=false LOG_LEVEL=warn DATABASE_URL=${kind === 'sqlite' ? 'sqlite:FILE' : `${POSTGRES_URL}?options=-c%20search_path%3DSCHEMA`} node bin/mailproof.js worker`,
    };
    ctx.log(
      `drain (${database.label}): ${run.perSecond.toFixed(0)} msg/s over ${seconds.toFixed(2)} s ` +
        `(${run.perSecondBySentAt.toFixed(0)}/s by sent_at; start-up ${run.startupSeconds.toFixed(2)} s); ` +
        `sink got ${stats.messages} (${stats.distinct} distinct), ${missing} missing, ${counts.dead} dead`,
    );
    return run;
  } finally {
    await worker?.stop();
    await db.close();
    await database.drop().catch((error: unknown) => ctx.log(`dropping the schema: ${error}`));
  }
}

/** The sink's ceiling: a nodemailer pool of 5 connections sending it the same message. */
async function sinkCeiling(ctx: PhaseContext, sink: Sink) {
  await sink.reset();
  const branding = { appName: 'Mailproof', brandColor: '#2f5bd3', baseUrl: BASE_URL };
  const rendered = renderEmail('verify-email', verifyPayload(0), branding);
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: POOL_CONNECTIONS, // as src/mail/transport.ts: nodemailer's other defaults
    host: '127.0.0.1',
    port: sink.port,
    secure: false,
    ignoreTLS: true,
  });
  const send = (i: number) =>
    transporter.sendMail({
      from: 'Mailproof <no-reply@127.0.0.1>',
      to: `ceiling-${i}@bench.test`,
      subject: rendered.subject,
      html: rendered.html,
      text: rendered.text,
      messageId: `<ceiling-${ctx.runId}-${i}@127.0.0.1>`,
    });
  let next = 0;
  const worker = async (total: number) => {
    while (next < total) await send(next++);
  };
  // Warm-up, then the measured run, both 20 messages in flight.
  await Promise.all(Array.from({ length: 20 }, () => worker(500)));
  const sinkPid = sink.child.process.pid;
  const before = cpuSample(sinkPid);
  const benchBefore = process.cpuUsage();
  const started = performance.now();
  next = 0;
  await Promise.all(Array.from({ length: 20 }, () => worker(SINK_CEILING_MESSAGES)));
  const seconds = (performance.now() - started) / 1000;
  const after = cpuSample(sinkPid);
  const benchCpu = process.cpuUsage(benchBefore);
  transporter.close();
  const stats = await sink.stats();
  await sink.reset();
  const result = {
    messages: SINK_CEILING_MESSAGES,
    seconds,
    perSecond: SINK_CEILING_MESSAGES / seconds,
    sinkCpu: cpuUse(before, after, SINK_CEILING_MESSAGES, seconds),
    clientCpuMsPerMessage: (benchCpu.user + benchCpu.system) / 1000 / SINK_CEILING_MESSAGES,
    sinkStats: stats,
  };
  ctx.log(
    `sink ceiling: ${result.perSecond.toFixed(0)} msg/s from a nodemailer pool of ${POOL_CONNECTIONS}; ` +
      `client ${result.clientCpuMsPerMessage.toFixed(2)} ms CPU/msg`,
  );
  return result;
}

function showCpu(cpu: CpuUse | null, unit: string): string {
  if (!cpu) return 'n/a';
  const t = (x: number) => (x < 1 ? `${Math.round(x * 1000)} µs` : `${x.toFixed(2)} ms`);
  return `${t(cpu.serverMsPerRequest)}/${unit} (main thread ${t(cpu.mainMsPerRequest)}); ${cpu.serverCores.toFixed(2)} of ${cpu.machineCores.toFixed(2)} busy cores`;
}

export async function drainPhase(ctx: PhaseContext) {
  const sink = await startSink(ctx);
  const ceiling = await sinkCeiling(ctx, sink);
  const runs: DrainRun[] = [];
  for (const kind of ['sqlite', 'postgres'] as const) {
    const run = await drainOnce(ctx, sink, kind);
    if (run) runs.push(run);
  }
  await sink.child.stop();
  const rows: PhaseRow[] = [
    {
      figure: `SMTP sink ceiling: nodemailer pool of ${POOL_CONNECTIONS} → sink (bench/sink.ts)`,
      value: `${ceiling.perSecond.toFixed(0)} msg/s; client ${ceiling.clientCpuMsPerMessage.toFixed(2)} ms CPU/msg; sink ${showCpu(ceiling.sinkCpu, 'msg')}`,
      ceiling: '',
      ratio: '',
      target: '',
      pass: null,
    },
  ];
  for (const run of runs) {
    const ratio = run.perSecond / ceiling.perSecond;
    rows.push(
      {
        figure: `outbox drain to the SMTP sink, ${run.database}, ${run.messages} verification emails`,
        value: `${run.perSecond.toFixed(0)} msg/s (${run.perSecondBySentAt.toFixed(0)}/s by sent_at)`,
        ceiling: `${ceiling.perSecond.toFixed(0)} msg/s (nodemailer pool → sink)`,
        ratio: `${(ratio * 100).toFixed(0)}%`,
        target: `≥ ${DRAIN_TARGET_PER_SECOND} msg/s`,
        pass: run.perSecond >= DRAIN_TARGET_PER_SECOND,
      },
      {
        figure: `outbox drain, ${run.database}: worker CPU per message`,
        value: showCpu(run.workerCpu, 'msg'),
        ceiling: `sink ${showCpu(run.sinkCpu, 'msg')}`,
        ratio: '',
        target: '',
        pass: null,
      },
      {
        figure: `outbox drain, ${run.database}: duplicates, missing, dead`,
        value: `${run.duplicates} duplicates, ${run.missing} missing, ${run.dead} dead, ${run.sink.withoutId} without Message-ID (sink got ${run.sink.messages})`,
        ceiling: '',
        ratio: '',
        target: '0',
        pass:
          run.duplicates === 0 && run.missing === 0 && run.dead === 0 && run.sink.withoutId === 0,
      },
    );
  }
  return { rows, data: { sinkCeiling: ceiling, runs } };
}

async function hashSamples(count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await hashPassword('bench passphrase: correct horse battery staple');
    samples.push(performance.now() - t);
  }
  return samples;
}

/** Two `serve` processes and one `worker` on one database; one wrk per server at once. */
export async function multiPhase(ctx: PhaseContext) {
  const sink = await startSink(ctx);
  const database =
    (await freshDatabase(ctx, 'postgres', 'multi')) ??
    (await freshDatabase(ctx, 'sqlite', 'multi'));
  if (!database) throw new Error('no database for the multi phase');
  const db = openDatabase(database.url);
  const started: Child[] = [];
  try {
    await migrateToLatest(db);
    const ports = [await freePort(), await freePort()];
    const dataDir = path.join(ctx.tmpDir, 'multi-data');
    const profile = ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`] : [];
    for (const [i, port] of ports.entries()) {
      const child = startChild(
        `mailproof serve ${i + 1}`,
        process.execPath,
        [...profile, 'bin/mailproof.js', 'serve'],
        {
          cwd: ctx.root,
          env: mailproofEnv(database.url, sink.port, {
            DATA_DIR: dataDir,
            HOST: '127.0.0.1',
            PORT: String(port),
            // Each serve hashes on its share of the cores, as the README advises.
            ...(process.env.BENCH_MULTI_SHARE === '0'
              ? {}
              : {
                  PASSWORD_HASH_THREADS: String(Math.max(1, Math.floor(ctx.cores / ports.length))),
                }),
          }),
          logFile: path.join(ctx.out, `multi-serve-${i + 1}.log`),
        },
      );
      started.push(child);
      ctx.children.push(child);
    }
    const worker = startChild(
      'mailproof worker (multi)',
      process.execPath,
      [...profile, 'bin/mailproof.js', 'worker'],
      {
        cwd: ctx.root,
        env: mailproofEnv(database.url, sink.port, { DATA_DIR: dataDir }),
        logFile: path.join(ctx.out, 'multi-worker.log'),
      },
    );
    started.push(worker);
    ctx.children.push(worker);
    for (const [i, port] of ports.entries()) {
      await waitUntil(
        `serve ${i + 1} /healthz`,
        async () =>
          (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }))
            .ok,
        { timeoutMs: 30_000, child: started[i] },
      );
    }
    ctx.log(`multi (${database.label}): serve on ${ports.join(', ')}, one worker`);
    const pids = started.map((c) => c.process.pid);
    const pass = async (seconds: number) => {
      const before = pids.map((pid) => cpuSample(pid));
      const runs = await Promise.all(
        ports.map((port, i) =>
          runWrk({
            url: `http://127.0.0.1:${port}/api/signup`,
            script: path.join(ctx.lua, 'signup.lua'),
            threads: 1,
            connections: MULTI_CONNECTIONS_PER_SERVER,
            durationSeconds: seconds,
            scriptArgs: [`${ctx.runId}m${i}${randomBytes(2).toString('hex')}`],
            timeoutSeconds: 5,
          }),
        ),
      );
      const after = pids.map((pid) => cpuSample(pid));
      const requests = runs.reduce((s, r) => s + r.result.requests, 0);
      const rps = runs.reduce((s, r) => s + r.rps, 0);
      const cpu = pids.map((_, i) =>
        cpuUse(before[i] ?? null, after[i] ?? null, requests, seconds),
      );
      return { runs, rps, requests, errors: runs.reduce((s, r) => s + r.errorCount, 0), cpu };
    };
    await hashSamples(5);
    await pass(2); // warm-up
    const hashBefore = await hashSamples(50);
    const passes = [];
    for (let i = 0; i < 2; i++) {
      const p = await pass(MULTI_SECONDS);
      passes.push(p);
      ctx.log(`multi pass ${i + 1}: ${p.rps.toFixed(1)} req/s, ${p.errors} errors`);
      await waitUntil('the outbox to drain', async () => (await statusCounts(db)).pending === 0, {
        timeoutMs: 60_000,
      });
    }
    const hashAfter = await hashSamples(50);
    const hashMs = median([...hashBefore, ...hashAfter]);
    const ceiling = ctx.cores / (hashMs / 1000);
    const bestPass = passes.reduce((a, b) => (b.rps > a.rps ? b : a));
    const counts = await statusCounts(db);
    const errors = passes.reduce((s, p) => s + p.errors, 0) + counts.dead;
    const cpuText = bestPass.cpu
      .map((c, i) =>
        c
          ? `${i < 2 ? `serve ${i + 1}` : 'worker'} ${c.serverMsPerRequest.toFixed(2)} ms (${c.serverCores.toFixed(2)} cores)`
          : 'n/a',
      )
      .join(', ');
    const machine = bestPass.cpu[0]?.machineCores.toFixed(2) ?? 'n/a';
    const rows: PhaseRow[] = [
      {
        figure: `sign-up throughput, 2 × serve + 1 worker on ${database.label}, 2 × ${MULTI_CONNECTIONS_PER_SERVER} connections`,
        value: `${bestPass.rps.toFixed(1)} req/s`,
        ceiling: `${ceiling.toFixed(1)} req/s (${ctx.cores} cores ÷ ${hashMs.toFixed(2)} ms argon2id)`,
        ratio: `${((bestPass.rps / ceiling) * 100).toFixed(0)}%`,
        target: '',
        pass: null,
      },
      {
        figure: 'multi: CPU per sign-up by process',
        value: `${cpuText}; machine ${machine} busy cores`,
        ceiling: '',
        ratio: '',
        target: '',
        pass: null,
      },
      {
        figure: 'multi: sign-up errors (non-202, socket, timeout) and dead mail',
        value: String(errors),
        ceiling: '',
        ratio: '',
        target: '0',
        pass: errors === 0,
      },
    ];
    return {
      rows,
      data: {
        database: database.label,
        commands: bestPass.runs.map((r: WrkRun) => r.command.replaceAll(`${ctx.root}/`, '')),
        passes,
        hash: { medianMs: hashMs, ceilingPerSecond: ceiling },
        outbox: counts,
        sink: await sink.stats(),
      },
    };
  } finally {
    await Promise.all(started.map((c) => c.stop()));
    await sink.child.stop();
    await db.close();
    await database.drop().catch((error: unknown) => ctx.log(`dropping the schema: ${error}`));
  }
}
