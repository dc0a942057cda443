// `npm run bench`: Mailproof's throughput and latency, each beside a ceiling measured in the same
// run on the same machine, so the ratio means something on a noisy machine. See docs/performance.md.
//
//   npm run bench                    # the full run (about 3 minutes, plus ~3.5 for drain and multi)
//   npm run bench -- --rounds 5      # more bare/confirm pairs (default 3; the best of each counts;
//                                    # the contact phase runs one pair fewer of each of its two)
//   npm run bench -- --profile       # also write a CPU profile of the server to bench/out/profile
//   npm run bench -- --only confirm  # one phase (confirm, signup, inbox, contact, drain, multi
//                                    # or flask); repeatable
//   npm run bench -- --keep          # keep the temporary data directory
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ARGON2ID_OPTIONS, hashPassword, hashPool } from '../src/accounts/password.ts';
import { type Config, DEV_SECRET_KEY, loadConfig } from '../src/config.ts';
import { type Db, migrateToLatest, openDatabase } from '../src/db/index.ts';
import { openInboxStore } from '../src/inbox/store.ts';
import { outboxCounts } from '../src/mail/outbox.ts';
import { renderEmail } from '../src/mail/render.ts';
import { composeMime } from '../src/mail/transport.ts';
import { drainPhase, multiPhase, type PhaseContext } from './drain.ts';
import {
  type ContactTotals,
  contactMessage,
  contactTotals,
  countAccepted,
  countSubmitted,
  countVerified,
  createConfirmFixture,
  createContactFixture,
  type FixtureBatch,
  type SubmittedCounts,
} from './fixture.ts';
import { flaskPhase } from './flask.ts';
import {
  assertWrk,
  type Child,
  type CpuUse,
  cpuSample,
  cpuUse,
  fmtMs,
  freePort,
  keepInFlight,
  lastLevelCache,
  median,
  percentile,
  portAcceptsConnections,
  runWrk,
  showCpu,
  startChild,
  type WrkRun,
  waitUntil,
} from './support.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench', 'out');
const LUA = path.join(ROOT, 'bench', 'lua');

const WRK_THREADS = 2;
const SIGNUP_CONNECTIONS = 8;
const CONFIRM_CONNECTIONS = 16;
const CONFIRM_SECONDS = 6; // each pass at least 5 s: wrk divides by its whole -d
const SIGNUP_SECONDS = 8;
const SIGNUP_PASSES = 2;
// V8 optimises the sign-up's code (render, MIME, inbox) only after a few thousand calls, and at
// ~100 sign-ups/s with both cores hashing that takes 15-25 s: with 2 s of warm-up the passes
// measured a main thread of 3.2 ms per sign-up that settles at 2.2 ms (docs/performance.md).
const SIGNUP_WARMUP_SECONDS = 20;
const HASH_SAMPLES = 50;
const LATENCY_SEQUENTIAL = 200;
const LATENCY_BATCHES = 25;
const LATENCY_BATCH_SIZE = 8;
const PASSWORD = 'bench passphrase: correct horse battery staple';
const CONTACT_CONNECTIONS = 16;
const CONTACT_SECONDS = 5; // wrk divides by its whole -d, so never shorter than 5 s
const CONTACT_MESSAGE_BYTES = 300;

const TARGETS = {
  signupShareOfHashCeiling: 0.8,
  confirmShareOfBare: 0.33,
  confirmP99Ms: 10,
  inboxP50Ms: 20,
};

const PHASES = ['confirm', 'signup', 'inbox', 'contact', 'drain', 'multi', 'flask'] as const;
/** The phases that use the one `mailproof start` server; drain and multi start their own. */
const SERVER_PHASES: readonly Phase[] = ['confirm', 'signup', 'inbox', 'contact'];
type Phase = (typeof PHASES)[number];

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const ROUNDS = Math.min(5, Math.max(1, Number(flags.rounds) || 3));
// The contact passes are followed by draining the mail they queued, so they cost more time each.
const CONTACT_ROUNDS = Math.max(1, ROUNDS - 1);
const only = (flags.only ?? []).flatMap((o) => o.split(','));
for (const o of only) {
  if (!PHASES.includes(o as Phase)) {
    console.error(`bench: --only takes ${PHASES.join(', ')}; got "${o}"`);
    process.exit(2);
  }
}
const phases = new Set<Phase>(only.length ? (only as Phase[]) : PHASES);

const children: Child[] = [];
let tmpDir = '';

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const ms = (us: number) => us / 1000;

interface Bench {
  runId: string;
  cores: number;
  base: string;
  db: Db;
  config: Config;
  barePort: number;
  serverPid: number | undefined;
  barePid: number | undefined;
  newBatch(count: number): Promise<FixtureBatch>;
  newContactBatch(count: number): Promise<FixtureBatch>;
}

async function main(): Promise<number> {
  assertWrk();
  const started = Date.now();
  // The server runs the code as it is now; a commit or an edit during the run is reported.
  const codeAtStart = gitCommit();
  const cores = os.cpus().length;
  const runId = randomBytes(4).toString('hex');
  mkdirSync(OUT, { recursive: true });
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'mailproof-bench-'));
  const dataDir = path.join(tmpDir, 'data');
  log(`run ${runId}: ${cores} cores, phases ${[...phases].join(', ')}, data in ${dataDir}`);

  const profileDir = path.join(OUT, 'profile');
  if (flags.profile) mkdirSync(profileDir, { recursive: true });
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  // drain and multi start (and stop) processes of their own, before the shared server starts.
  const phaseContext: PhaseContext = {
    root: ROOT,
    out: OUT,
    tmpDir,
    runId,
    cores,
    lua: LUA,
    children,
    profileDir: flags.profile ? profileDir : null,
    log,
  };
  try {
    if (phases.has('drain')) {
      const drain = await drainPhase(phaseContext);
      rows.push(...drain.rows);
      results.drain = drain.data;
    }
    if (phases.has('multi')) {
      const multi = await multiPhase(phaseContext);
      rows.push(...multi.rows);
      results.multi = multi.data;
    }
  } finally {
    await stopChildren();
  }
  if (SERVER_PHASES.some((p) => phases.has(p))) await serverPhases(runId, cores, rows, results);
  if (phases.has('flask')) {
    // After the confirm phase, whose best pass it is set beside; its servers are its own.
    const confirm = results.confirm as { best: WrkRun } | undefined;
    try {
      const flask = await flaskPhase(
        phaseContext,
        confirm ? { rps: confirm.best.rps, p99Us: confirm.best.result.latency_us.p99 } : null,
      );
      rows.push(...flask.rows);
      results.flask = flask.data;
    } finally {
      await stopChildren();
    }
  }
  return report(started, codeAtStart, cores, runId, rows, results);
}

/** The phases that share one `mailproof start` server (and the bare server). */
async function serverPhases(
  runId: string,
  cores: number,
  rows: Row[],
  results: Record<string, unknown>,
): Promise<void> {
  const dataDir = path.join(tmpDir, 'data');
  // The servers, each in its own process.
  const [port, smtpPort, barePort] = await Promise.all([freePort(), freePort(), freePort()]);
  const base = `http://127.0.0.1:${port}`;
  const serverEnv: Record<string, string> = {
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    DATABASE_URL: `sqlite:${path.join(dataDir, 'mailproof.db')}`,
    HOST: '127.0.0.1',
    PORT: String(port),
    BASE_URL: base,
    INBOX_ENABLED: 'true',
    INBOX_SMTP_HOST: '127.0.0.1',
    INBOX_SMTP_PORT: String(smtpPort),
    MAIL_SERVER: '', // empty: mail goes to the built-in inbox, whatever a local .env says
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    SECRET_KEY: DEV_SECRET_KEY, // the confirm fixture keys its codes with the same secret
  };
  const config = loadConfig({ env: serverEnv, dotenvPath: false });
  const profileDir = path.join(OUT, 'profile');
  const server = startChild(
    'mailproof server',
    process.execPath,
    [
      ...(flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      'bin/mailproof.js',
      'start',
    ],
    { cwd: ROOT, env: { ...process.env, ...serverEnv }, logFile: path.join(OUT, 'server.log') },
  );
  children.push(server);
  if (phases.has('confirm') || phases.has('contact')) {
    const bare = startChild(
      'bare server',
      process.execPath,
      ['--import', 'tsx', 'bench/bare-server.ts', String(barePort)],
      { cwd: ROOT, env: process.env, logFile: path.join(OUT, 'bare-server.log') },
    );
    children.push(bare);
    await waitUntil('the bare server', () => portAcceptsConnections(barePort), {
      timeoutMs: 30_000,
      child: bare,
    });
  }
  await waitUntil(
    `${base}/healthz`,
    async () => (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) })).ok,
    { timeoutMs: 30_000, child: server },
  );
  log(`mailproof server on ${base} (pid ${server.process.pid})`);

  // The bench's own connection to the server's database, for the fixture and the checks.
  const db = openDatabase(config.databaseUrl);
  await migrateToLatest(db);
  const passwordHash = await hashPassword(PASSWORD);
  let batchNo = 0;
  const bench: Bench = {
    runId,
    cores,
    base,
    db,
    config,
    barePort,
    serverPid: server.process.pid,
    barePid: children.find((c) => c.name === 'bare server')?.process.pid,
    newBatch(count) {
      batchNo += 1;
      return createConfirmFixture(db, config, {
        count,
        emailPrefix: `confirm-${runId}-b${batchNo}-`,
        tokenFile: path.join(tmpDir, `tokens-${batchNo}.txt`),
        passwordHash,
      });
    },
    newContactBatch(count) {
      batchNo += 1;
      return createContactFixture(db, config, {
        count,
        emailPrefix: `contact-confirm-${runId}-b${batchNo}-`,
        tokenFile: path.join(tmpDir, `tokens-${batchNo}.txt`),
        message: contactMessage(CONTACT_MESSAGE_BYTES),
      });
    },
  };

  try {
    if (phases.has('signup')) {
      const signup = await signupPhase(bench);
      rows.push(...signup.rows);
      results.signup = signup.data;
    }
    if (phases.has('confirm')) {
      const confirm = await confirmPhase(bench);
      rows.push(...confirm.rows);
      results.confirm = confirm.data;
    }
    if (phases.has('inbox')) {
      const inbox = await inboxPhase(bench);
      rows.push(...inbox.rows);
      results.inbox = inbox.data;
    }
    if (phases.has('contact')) {
      const contact = await contactPhase(bench);
      rows.push(...contact.rows);
      results.contact = contact.data;
    }
  } finally {
    await db.close();
    await stopChildren();
  }
}

async function report(
  started: number,
  codeAtStart: GitState | null,
  cores: number,
  runId: string,
  rows: Row[],
  results: Record<string, unknown>,
): Promise<number> {
  const table = markdownTable(rows);
  const allPass = rows.every((r) => r.pass !== false);
  const machine = `${cores} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}`;
  const date = new Date().toISOString();
  const codeAtEnd = gitCommit();
  const codeChanged =
    codeAtStart?.commit !== codeAtEnd?.commit || codeAtStart?.changes !== codeAtEnd?.changes;
  const report = {
    date,
    seconds: Math.round((Date.now() - started) / 1000),
    machine,
    loadAverage: os.loadavg(),
    node: process.version,
    commit: codeAtStart,
    ...(codeChanged ? { commitAtEnd: codeAtEnd } : {}),
    runId,
    phases: [...phases],
    allPass,
    rows,
    ...results,
  };
  writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);

  console.log(
    `\nMailproof bench, ${date.slice(0, 16).replace('T', ' ')} UTC, ${describeCommit(codeAtStart)}, ${machine}, Node ${process.version}\n`,
  );
  console.log(table);
  console.log(`\n${allPass ? 'All targets met.' : 'Some targets missed (FAIL above).'}`);
  if (codeChanged) {
    console.log(
      `The code changed during the run (${describeCommit(codeAtStart)} at the start, ${describeCommit(codeAtEnd)} at the end): the figures belong to neither for sure.`,
    );
  }
  console.log(
    `Load average after the run: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine lowers value and ceiling alike).`,
  );
  console.log('Details in bench/out/results.json; server output in bench/out/server.log.');
  if (flags.profile) {
    console.log(
      'CPU profiles of the server in bench/out/profile/: npx tsx bench/profile-summary.ts bench/out/profile/*.cpuprofile',
    );
  }
  return allPass ? 0 : 1;
}

/** Sign-up throughput at 8 connections against cores ÷ (time of one argon2id hash). */
async function signupPhase(bench: Bench) {
  const signupWrk = (seconds: number) =>
    runWrk({
      url: `${bench.base}/api/signup`,
      script: path.join(LUA, 'signup.lua'),
      threads: WRK_THREADS,
      connections: SIGNUP_CONNECTIONS,
      durationSeconds: seconds,
      scriptArgs: [`${bench.runId}${randomBytes(2).toString('hex')}`],
      timeoutSeconds: 5,
      serverPid: bench.serverPid,
    });
  await hashSamples(5); // loads the native module and warms the allocator
  await signupWrk(SIGNUP_WARMUP_SECONDS);
  await waitForOutbox(bench.db);
  // The ceiling is measured around each pass, while the server is idle; the best pass counts.
  const hashBefore = await hashSamples(HASH_SAMPLES);
  const passes: Array<WrkRun & { outbox: Awaited<ReturnType<typeof waitForOutbox>> }> = [];
  for (let pass = 1; pass <= SIGNUP_PASSES; pass++) {
    const run = await signupWrk(SIGNUP_SECONDS);
    passes.push({ ...run, outbox: await waitForOutbox(bench.db) });
    log(`sign-up pass ${pass}: ${run.rps.toFixed(1)} req/s`);
  }
  const signup = best(passes);
  const hashAfter = await hashSamples(HASH_SAMPLES);
  const parallel = await hashThroughput(SIGNUP_CONNECTIONS, 20 * SIGNUP_CONNECTIONS);
  const contention = await memoryContention(bench.cores);
  const hashMs = median([...hashBefore, ...hashAfter]);
  const ceiling = bench.cores / (hashMs / 1000);
  const ratio = signup.rps / ceiling;
  const errors = passes.reduce((sum, p) => sum + p.errorCount, 0);
  log(
    `sign-up: ${signup.rps.toFixed(1)} req/s, p99 ${ms(signup.result.latency_us.p99).toFixed(1)} ms; ` +
      `argon2id ${hashMs.toFixed(2)} ms -> ceiling ${ceiling.toFixed(1)}/s`,
  );
  const rows: Row[] = [
    {
      figure: `sign-up throughput, ${SIGNUP_CONNECTIONS} connections`,
      value: `${signup.rps.toFixed(1)} req/s`,
      ceiling: `${ceiling.toFixed(1)} req/s (${bench.cores} cores ÷ ${hashMs.toFixed(2)} ms argon2id)`,
      ratio: pct(ratio),
      target: `≥ ${pct(TARGETS.signupShareOfHashCeiling)}`,
      pass: ratio >= TARGETS.signupShareOfHashCeiling,
    },
    {
      figure: `argon2id alone, ${SIGNUP_CONNECTIONS} in flight in one process (diagnostic)`,
      value: `${parallel.perSecond.toFixed(1)} hashes/s, ${parallel.cpuMsPerHash.toFixed(2)} ms CPU each`,
      ceiling: `${ceiling.toFixed(1)} /s`,
      ratio: pct(parallel.perSecond / ceiling),
      target: '',
      pass: null,
    },
    {
      // What the server adds to the hashing: sign-up throughput against hashing alone, both with
      // two hashes running at once. The gap to the ceiling that this row does not explain is the
      // machine's: two 19 MiB hashes share one L3 cache and one memory bus.
      figure: 'sign-up against argon2id alone (diagnostic)',
      value: `${signup.rps.toFixed(1)} req/s`,
      ceiling: `${parallel.perSecond.toFixed(1)} hashes/s`,
      ratio: pct(signup.rps / parallel.perSecond),
      target: '',
      pass: null,
    },
    {
      // Why hashing alone falls short of cores ÷ t: whether the hashes running at once still fit
      // in the shared last-level cache together (bench/experiments/hash-scaling.ts for all five
      // of OWASP's settings). The 9 MiB one is shown for comparison only: SPEC §2 asks for 19 MiB.
      figure: `argon2id, one alone against ${bench.cores} at once (diagnostic)`,
      value: contention.settings
        .map(
          (s) =>
            `${s.label}: ${s.aloneMs.toFixed(2)} ms alone, ${s.togetherMs.toFixed(2)} ms each at once (${pct(s.aloneMs / s.togetherMs)} of cores ÷ t)`,
        )
        .join('; '),
      ceiling: `last-level cache ${contention.lastLevelCache}`,
      ratio: '',
      target: '',
      pass: null,
    },
    cpuRow('sign-up: server CPU per request', signup.cpu),
    latencyRow('sign-up latency p50', signup.result.latency_us.p50),
    latencyRow('sign-up latency p99', signup.result.latency_us.p99),
    {
      figure: 'sign-up errors (non-202, socket, timeout)',
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
      command: displayCommand(signup.command),
      best: signup,
      passes,
      hash: {
        cores: bench.cores,
        medianMs: hashMs,
        ceilingPerSecond: ceiling,
        parallel,
        contention,
        samplesMs: { before: hashBefore, after: hashAfter },
      },
    },
  };
}

/** Confirm throughput at 16 connections against a bare node:http server under the same wrk command. */
async function confirmPhase(bench: Bench) {
  const bareUrl = `http://127.0.0.1:${bench.barePort}/api/verify`;
  const confirmUrl = `${bench.base}/api/verify`;
  const confirmWrk = (url: string, tokenFile: string, mode: 'once' | 'wrap', seconds: number) =>
    runWrk({
      url,
      script: path.join(LUA, 'confirm.lua'),
      threads: WRK_THREADS,
      connections: CONFIRM_CONNECTIONS,
      durationSeconds: seconds,
      scriptArgs: [tokenFile, String(WRK_THREADS), mode],
      serverPid: url === bareUrl ? bench.barePid : bench.serverPid,
    });

  const spot = await spotCheckConfirm(bench, confirmUrl);
  const warmBatch = await bench.newBatch(30_000);
  log(`fixture: ${warmBatch.count} tokens in ${warmBatch.seconds.toFixed(1)} s (warm-up)`);
  await confirmWrk(bareUrl, warmBatch.tokenFile, 'wrap', 2);
  const warm = await confirmWrk(confirmUrl, warmBatch.tokenFile, 'once', 2);
  // Once the warm-up's tokens run out the server answers 400 quickly: count what was built.
  const warmRate = warm.result.exhausted > 0 ? warm.result.built / 2 : warm.rps;
  log(`confirm warm-up: ${warm.rps.toFixed(0)} req/s`);
  // Generous: a pass must never run short, or wrk's rate (divided by the whole -d) would lie.
  let perPass = roundUp(Math.max(warmRate, 2000) * 2 * CONFIRM_SECONDS, 300_000);

  const bareRuns: WrkRun[] = [];
  const confirmRuns: ConfirmRun[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    let batch = await bench.newBatch(perPass);
    log(`fixture: ${batch.count} tokens in ${batch.seconds.toFixed(1)} s (round ${round})`);
    const bareRun = await confirmWrk(bareUrl, batch.tokenFile, 'wrap', CONFIRM_SECONDS);
    bareRuns.push(bareRun);
    log(
      `bare:    ${bareRun.rps.toFixed(0)} req/s, p99 ${ms(bareRun.result.latency_us.p99).toFixed(2)} ms`,
    );
    let run = await confirmWrk(confirmUrl, batch.tokenFile, 'once', CONFIRM_SECONDS);
    if (run.result.exhausted > 0) {
      // Ran short: size up from what this pass reached and run it once more.
      perPass = roundUp(run.result.built * 2, 600_000);
      log(`confirm pass ran out of tokens; again with ${perPass}`);
      batch = await bench.newBatch(perPass);
      run = await confirmWrk(confirmUrl, batch.tokenFile, 'once', CONFIRM_SECONDS);
    }
    // Every 2xx must have verified an account of its own: count them in the database.
    const verified = await countVerified(bench.db, batch.emailPrefix);
    const answeredOk = run.result.requests - run.result.errors.status;
    const notVerified = Math.max(0, answeredOk - verified);
    confirmRuns.push({
      ...run,
      tokens: batch.count,
      verified,
      notVerified,
      errorCount: run.errorCount + notVerified,
    });
    log(
      `confirm: ${run.rps.toFixed(0)} req/s, p99 ${ms(run.result.latency_us.p99).toFixed(2)} ms, ` +
        `${verified} accounts verified for ${run.result.requests} responses, ${run.errorCount + notVerified} errors`,
    );
  }
  const bestBare = best(bareRuns);
  const bestConfirm = best(confirmRuns);
  const ratio = bestConfirm.rps / bestBare.rps;

  // Diagnostic: the same route with a token of the right length but the wrong shape, which
  // Mailproof refuses (400) before touching the database: the cost of the HTTP stack alone.
  const malformed = path.join(tmpDir, 'tokens-malformed.txt');
  writeFileSync(
    malformed,
    `${Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(42, '0')}`).join('\n')}\n`,
  );
  const stackOnly = await confirmWrk(confirmUrl, malformed, 'wrap', 3);
  log(`confirm, HTTP stack only (400 before the database): ${stackOnly.rps.toFixed(0)} req/s`);
  const errors = confirmRuns.reduce((sum, r) => sum + r.errorCount, 0);
  const rows: Row[] = [
    {
      figure: `confirm throughput, ${CONFIRM_CONNECTIONS} connections`,
      value: `${bestConfirm.rps.toFixed(0)} req/s`,
      ceiling: `${bestBare.rps.toFixed(0)} req/s (bare node:http)`,
      ratio: pct(ratio),
      target: `≥ ${pct(TARGETS.confirmShareOfBare)}`,
      pass: ratio >= TARGETS.confirmShareOfBare,
    },
    cpuRow('confirm: server CPU per request', bestConfirm.cpu, bestBare.cpu),
    latencyRow(
      'confirm latency p50',
      bestConfirm.result.latency_us.p50,
      bestBare.result.latency_us.p50,
    ),
    {
      ...latencyRow(
        'confirm latency p99',
        bestConfirm.result.latency_us.p99,
        bestBare.result.latency_us.p99,
      ),
      target: `≤ ${TARGETS.confirmP99Ms} ms`,
      pass: ms(bestConfirm.result.latency_us.p99) <= TARGETS.confirmP99Ms,
    },
    {
      ...cpuRow('confirm: HTTP stack only (malformed token, 400, no database)', stackOnly.cpu),
      value: `${stackOnly.rps.toFixed(0)} req/s; ${showCpu(stackOnly.cpu)}`,
    },
    {
      figure: `confirm spot-check: ${spot.tokens} tokens by fetch, each sent twice`,
      value: `${spot.mismatches} answers other than verified, then already_verified`,
      ceiling: '',
      ratio: '',
      target: '0',
      pass: spot.mismatches === 0,
    },
    {
      figure: 'confirm errors (non-2xx, not verified, socket, out of tokens)',
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
      command: displayCommand(bestConfirm.command),
      best: bestConfirm,
      bare: bestBare,
      confirmRuns,
      bareRuns,
      warmUp: warm,
      stackOnly,
      spotCheck: spot,
    },
  };
}

/** The exact answers, outside wrk: 200 {"status":"verified"} once, then already_verified. */
async function spotCheckConfirm(bench: Bench, url: string) {
  const batch = await bench.newBatch(20);
  const tokens = readFileSync(batch.tokenFile, 'utf8').split('\n').filter(Boolean);
  const send = async (token: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      signal: AbortSignal.timeout(5000),
    });
    return `${res.status} ${await res.text()}`;
  };
  const unexpected: string[] = [];
  for (const token of tokens) {
    const first = await send(token);
    const second = await send(token);
    if (first !== '200 {"status":"verified"}') unexpected.push(first);
    if (second !== '200 {"status":"already_verified"}') unexpected.push(second);
  }
  if (unexpected.length)
    log(`confirm spot-check: unexpected answers ${unexpected.slice(0, 3).join('; ')}`);
  return { tokens: tokens.length, mismatches: unexpected.length, examples: unexpected.slice(0, 5) };
}

interface ConfirmRun extends WrkRun {
  tokens: number;
  verified: number;
  notVerified: number;
}

/** From the sign-up response to the message in the inbox, one at a time and several at once. */
async function inboxPhase(bench: Bench) {
  const floor = await measureDeliveryFloor(path.join(tmpDir, 'floor'));
  await inboxLatency(bench.base, bench.runId, 'warm', 20, 1);
  const sequential = await inboxLatency(bench.base, bench.runId, 'seq', LATENCY_SEQUENTIAL, 1);
  const concurrent = await inboxLatency(
    bench.base,
    bench.runId,
    'par',
    LATENCY_BATCHES * LATENCY_BATCH_SIZE,
    LATENCY_BATCH_SIZE,
  );
  const seqP50 = median(sequential.afterResponse);
  log(
    `inbox: p50 ${seqP50.toFixed(2)} ms one at a time, ${median(concurrent.afterResponse).toFixed(2)} ms ` +
      `${LATENCY_BATCH_SIZE} at once; in-process delivery work ${floor.median.toFixed(2)} ms`,
  );
  const reference = `${fmtMs(floor.median)} (one message's render + MIME + ingest, in-process)`;
  const missing = sequential.missing + concurrent.missing + sequential.failed + concurrent.failed;
  const rows: Row[] = [
    {
      figure: 'message in the inbox after the sign-up response, p50 (one at a time)',
      value: fmtMs(seqP50),
      ceiling: reference,
      ratio: '',
      target: `≤ ${TARGETS.inboxP50Ms} ms`,
      pass: seqP50 <= TARGETS.inboxP50Ms,
    },
    {
      ...latencyRow('message in the inbox after the sign-up response, p99 (one at a time)', 0),
      value: fmtMs(percentile(sequential.afterResponse, 99)),
    },
    {
      ...latencyRow(
        `message in the inbox after the sign-up response, p50 (${LATENCY_BATCH_SIZE} at once)`,
        0,
      ),
      value: fmtMs(median(concurrent.afterResponse)),
    },
    {
      ...latencyRow(
        `message in the inbox after the sign-up response, p99 (${LATENCY_BATCH_SIZE} at once)`,
        0,
      ),
      value: fmtMs(percentile(concurrent.afterResponse, 99)),
    },
    {
      figure: 'messages missing or sign-ups failed',
      value: String(missing),
      ceiling: '',
      ratio: '',
      target: '0',
      pass: missing === 0,
    },
  ];
  return {
    rows,
    data: {
      deliveryFloorMs: floor,
      sequential: summarise(sequential),
      concurrent: { batchSize: LATENCY_BATCH_SIZE, ...summarise(concurrent) },
    },
  };
}

/**
 * The contact form at 16 connections, each figure against the bare node:http server under the
 * same wrk command: submit (a pending message, its verification and its email, from a new
 * address each time) and confirm (every single-use token once; each acceptance queues one
 * delivery to CONTACT_TO). No targets: the ratios are for information, the errors must be 0.
 */
async function contactPhase(bench: Bench) {
  const bare = `http://127.0.0.1:${bench.barePort}`;
  const pidOf = (base: string) => (base === bare ? bench.barePid : bench.serverPid);
  let passNo = 0;
  const submitWrk = async (base: string, seconds: number) => {
    passNo += 1;
    const runTag = `${bench.runId}s${passNo}`; // a new sender prefix for every pass
    const run = await runWrk({
      url: `${base}/api/contact`,
      script: path.join(LUA, 'contact.lua'),
      threads: WRK_THREADS,
      connections: CONTACT_CONNECTIONS,
      durationSeconds: seconds,
      scriptArgs: [runTag, String(CONTACT_MESSAGE_BYTES)],
      serverPid: pidOf(base),
    });
    return { ...run, emailPrefix: `contact-${runTag}-t` };
  };
  const confirmWrk = (base: string, tokenFile: string, mode: 'once' | 'wrap', seconds: number) =>
    runWrk({
      url: `${base}/api/contact/confirm`,
      script: path.join(LUA, 'confirm.lua'),
      threads: WRK_THREADS,
      connections: CONTACT_CONNECTIONS,
      durationSeconds: seconds,
      scriptArgs: [tokenFile, String(WRK_THREADS), mode],
      serverPid: pidOf(base),
    });

  // Submit. Each pass is followed by sending the verification emails it queued (the worker
  // falls behind at these rates), so the next pass starts with an empty outbox.
  const submitSpot = await spotCheckSubmit(bench);
  await submitWrk(bare, 2); // warm-up
  await withMailSent(bench, () => submitWrk(bench.base, 2));
  const bareSubmits: WrkRun[] = [];
  const submits: SubmitRun[] = [];
  for (let round = 1; round <= CONTACT_ROUNDS; round++) {
    const bareRun = await submitWrk(bare, CONTACT_SECONDS);
    bareSubmits.push(bareRun);
    log(`bare:    ${bareRun.rps.toFixed(0)} req/s (contact submit)`);
    const { run, mail } = await withMailSent(bench, () => submitWrk(bench.base, CONTACT_SECONDS));
    // Every 202 must have stored a pending message, its live verification and its email.
    const written = await countSubmitted(bench.db, run.emailPrefix);
    const answeredOk = run.result.requests - run.result.errors.status;
    const complete = Math.min(written.messages, written.verifications, written.emails);
    const notWritten = Math.max(0, answeredOk - complete);
    const errorCount = run.errorCount + notWritten + mail.dead;
    submits.push({ ...run, written, notWritten, mail, errorCount });
    log(
      `contact submit: ${run.rps.toFixed(0)} req/s, p99 ${ms(run.result.latency_us.p99).toFixed(2)} ms; ` +
        `${complete} complete submissions for ${run.result.requests} responses; ` +
        `${mail.backlog} emails queued at the end, sent in ${(mail.drainMs / 1000).toFixed(1)} s; ${errorCount} errors`,
    );
  }
  const bestBareSubmit = best(bareSubmits);
  const bestSubmit = best(submits);
  const submitErrors = submits.reduce((sum, r) => sum + r.errorCount, 0);

  // Confirm, on a fixture of pending messages and their tokens made by the domain code.
  const confirmSpot = await spotCheckContactConfirm(bench);
  const warmBatch = await bench.newContactBatch(10_000);
  log(`fixture: ${warmBatch.count} contact tokens in ${warmBatch.seconds.toFixed(1)} s (warm-up)`);
  await confirmWrk(bare, warmBatch.tokenFile, 'wrap', 2);
  const { run: warm } = await withMailSent(bench, () =>
    confirmWrk(bench.base, warmBatch.tokenFile, 'once', 2),
  );
  const warmRate = warm.result.exhausted > 0 ? warm.result.built / 2 : warm.rps;
  log(`contact confirm warm-up: ${warm.rps.toFixed(0)} req/s`);
  // Generous, as for confirm: a pass must never run short.
  let perPass = roundUp(Math.max(warmRate, 2000) * 2 * CONTACT_SECONDS, 150_000);
  const bareConfirms: WrkRun[] = [];
  const confirms: ContactConfirmRun[] = [];
  for (let round = 1; round <= CONTACT_ROUNDS; round++) {
    let batch = await bench.newContactBatch(perPass);
    log(`fixture: ${batch.count} contact tokens in ${batch.seconds.toFixed(1)} s (round ${round})`);
    const bareRun = await confirmWrk(bare, batch.tokenFile, 'wrap', CONTACT_SECONDS);
    bareConfirms.push(bareRun);
    log(`bare:    ${bareRun.rps.toFixed(0)} req/s (contact confirm)`);
    let before = await contactTotals(bench.db);
    let pass = await withMailSent(bench, () =>
      confirmWrk(bench.base, batch.tokenFile, 'once', CONTACT_SECONDS),
    );
    if (pass.run.result.exhausted > 0) {
      perPass = roundUp(pass.run.result.built * 2, 300_000);
      log(`contact confirm pass ran out of tokens; again with ${perPass}`);
      batch = await bench.newContactBatch(perPass);
      before = await contactTotals(bench.db);
      pass = await withMailSent(bench, () =>
        confirmWrk(bench.base, batch.tokenFile, 'once', CONTACT_SECONDS),
      );
    }
    const { run, mail } = pass;
    const after = await contactTotals(bench.db);
    // Every 2xx must have accepted a message of its own, and every accepted message must have
    // queued exactly one delivery to CONTACT_TO.
    const accepted = await countAccepted(bench.db, batch.emailPrefix);
    const answeredOk = run.result.requests - run.result.errors.status;
    const notAccepted = Math.max(0, answeredOk - accepted);
    const acceptedDelta = after.accepted - before.accepted;
    const deliveries = after.deliveries - before.deliveries;
    const deliveryMismatch = Math.abs(deliveries - acceptedDelta);
    const errorCount = run.errorCount + notAccepted + deliveryMismatch + mail.dead;
    confirms.push({
      ...run,
      tokens: batch.count,
      accepted,
      acceptedInDatabase: acceptedDelta,
      deliveries,
      notAccepted,
      deliveryMismatch,
      mail,
      errorCount,
    });
    log(
      `contact confirm: ${run.rps.toFixed(0)} req/s, p99 ${ms(run.result.latency_us.p99).toFixed(2)} ms; ` +
        `${accepted} messages accepted and ${deliveries} deliveries queued for ${run.result.requests} responses; ` +
        `${mail.backlog} emails queued at the end, sent in ${(mail.drainMs / 1000).toFixed(1)} s; ${errorCount} errors`,
    );
  }
  const bestBareConfirm = best(bareConfirms);
  const bestConfirm = best(confirms);
  const confirmErrors = confirms.reduce((sum, r) => sum + r.errorCount, 0);

  // The worker falls behind at these rates: what a request costs once its email is sent too.
  const withMailRows = (
    what: string,
    email: string,
    run: WrkRun & { mail: MailSent },
    queued: number,
  ): Row[] => {
    const { mail } = run;
    const perEmail = mail.drainCpu?.serverMsPerRequest;
    const perRequest = mail.cpu?.serverMsPerRequest;
    // The pass and the drain together, less the queued emails at the drain's cost each.
    const split =
      perEmail !== undefined && perRequest !== undefined
        ? `~${fmtMs(perRequest - (queued / run.result.requests) * perEmail)} the request, ${fmtMs(perEmail)} its ${email} (the drain's CPU per email); `
        : '';
    return [
      {
        figure: `${what}, until its ${email}s are sent (the pass, then the outbox drained)`,
        value: `${mail.sustainedRps.toFixed(0)} req/s; ${showCpu(mail.cpu)}`,
        ceiling: '',
        ratio: '',
        target: '',
        pass: null,
      },
      {
        figure: `${what}: server CPU per request, split (estimate)`,
        value: `${split}${mail.backlog} ${email}s queued when wrk stopped, sent in ${(mail.drainMs / 1000).toFixed(1)} s`,
        ceiling: '',
        ratio: '',
        target: '',
        pass: null,
      },
    ];
  };
  const rows: Row[] = [
    {
      figure: `contact submit throughput, ${CONTACT_CONNECTIONS} connections`,
      value: `${bestSubmit.rps.toFixed(0)} req/s`,
      ceiling: `${bestBareSubmit.rps.toFixed(0)} req/s (bare node:http)`,
      ratio: pct(bestSubmit.rps / bestBareSubmit.rps),
      target: '',
      pass: null,
    },
    cpuRow('contact submit: server CPU per request', bestSubmit.cpu, bestBareSubmit.cpu),
    ...withMailRows('contact submit', 'verification email', bestSubmit, bestSubmit.written.emails),
    latencyRow(
      'contact submit latency p50',
      bestSubmit.result.latency_us.p50,
      bestBareSubmit.result.latency_us.p50,
    ),
    latencyRow(
      'contact submit latency p99',
      bestSubmit.result.latency_us.p99,
      bestBareSubmit.result.latency_us.p99,
    ),
    {
      figure: `contact submit spot-check: ${submitSpot.submits} submits by fetch`,
      value: `${submitSpot.mismatches} answers other than 202 pending, or rows or emails missing`,
      ceiling: '',
      ratio: '',
      target: '0',
      pass: submitSpot.mismatches === 0,
    },
    {
      figure: 'contact submit errors (non-202, not stored, socket, timeout, mail dead)',
      value: String(submitErrors),
      ceiling: '',
      ratio: '',
      target: '0',
      pass: submitErrors === 0,
    },
    {
      figure: `contact confirm throughput, ${CONTACT_CONNECTIONS} connections`,
      value: `${bestConfirm.rps.toFixed(0)} req/s`,
      ceiling: `${bestBareConfirm.rps.toFixed(0)} req/s (bare node:http)`,
      ratio: pct(bestConfirm.rps / bestBareConfirm.rps),
      target: '',
      pass: null,
    },
    cpuRow('contact confirm: server CPU per request', bestConfirm.cpu, bestBareConfirm.cpu),
    ...withMailRows('contact confirm', 'delivery email', bestConfirm, bestConfirm.deliveries),
    latencyRow(
      'contact confirm latency p50',
      bestConfirm.result.latency_us.p50,
      bestBareConfirm.result.latency_us.p50,
    ),
    latencyRow(
      'contact confirm latency p99',
      bestConfirm.result.latency_us.p99,
      bestBareConfirm.result.latency_us.p99,
    ),
    {
      figure: `contact confirm spot-check: ${confirmSpot.tokens} tokens by fetch, each sent twice`,
      value: `${confirmSpot.mismatches} answers other than accepted, then already_accepted, or deliveries ≠ 1 each`,
      ceiling: '',
      ratio: '',
      target: '0',
      pass: confirmSpot.mismatches === 0,
    },
    {
      figure:
        'contact confirm errors (non-2xx, not accepted, deliveries ≠ accepted, socket, out of tokens, mail dead)',
      value: String(confirmErrors),
      ceiling: '',
      ratio: '',
      target: '0',
      pass: confirmErrors === 0,
    },
  ];
  return {
    rows,
    data: {
      submit: {
        command: displayCommand(bestSubmit.command),
        best: bestSubmit,
        bare: bestBareSubmit,
        runs: submits,
        bareRuns: bareSubmits,
        spotCheck: submitSpot,
      },
      confirm: {
        command: displayCommand(bestConfirm.command),
        best: bestConfirm,
        bare: bestBareConfirm,
        runs: confirms,
        bareRuns: bareConfirms,
        warmUp: warm,
        spotCheck: confirmSpot,
      },
    },
  };
}

interface MailSent {
  /** Emails still pending in the outbox when wrk stopped. */
  backlog: number;
  /** From wrk's exit to the outbox being empty. */
  drainMs: number;
  /** Requests wrk counted ÷ (the pass and the drain): the rate the server keeps up with its mail. */
  sustainedRps: number;
  /** Server CPU from the start of the pass to the empty outbox, per request wrk counted. */
  cpu: CpuUse | null;
  /** Server CPU during the drain, per email in the backlog. */
  drainCpu: CpuUse | null;
  /** Outbox rows dead-lettered meanwhile. */
  dead: number;
}

interface SubmitRun extends WrkRun {
  emailPrefix: string;
  written: SubmittedCounts;
  notWritten: number;
  mail: MailSent;
}

interface ContactConfirmRun extends WrkRun {
  tokens: number;
  /** The batch's messages now accepted. */
  accepted: number;
  /** Messages accepted in the whole database during the pass, and deliveries queued. */
  acceptedInDatabase: number;
  deliveries: number;
  notAccepted: number;
  deliveryMismatch: number;
  mail: MailSent;
}

/** A pass against Mailproof, then until the worker has sent all it queued; CPU over both. */
async function withMailSent<T extends WrkRun>(
  bench: Bench,
  pass: () => Promise<T>,
): Promise<{ run: T; mail: MailSent }> {
  const deadBefore = (await outboxCounts(bench.db.kysely)).dead;
  const cpuBefore = cpuSample(bench.serverPid);
  const started = performance.now();
  const run = await pass();
  const cpuPassed = cpuSample(bench.serverPid);
  const drain = await waitForOutbox(bench.db);
  const cpuAfter = cpuSample(bench.serverPid);
  const seconds = (performance.now() - started) / 1000;
  return {
    run,
    mail: {
      backlog: drain.pendingAtStart,
      drainMs: drain.waitedMs,
      sustainedRps: run.result.requests / seconds,
      cpu: cpuUse(cpuBefore, cpuAfter, run.result.requests, seconds),
      drainCpu: cpuUse(cpuPassed, cpuAfter, drain.pendingAtStart, drain.waitedMs / 1000),
      dead: (await outboxCounts(bench.db.kysely)).dead - deadBefore,
    },
  };
}

/**
 * The exact answers and what each submit stores, outside wrk: 202 {"status":"pending"}, one
 * pending message, a live verification for it and its verification email, which reaches the inbox.
 */
async function spotCheckSubmit(bench: Bench) {
  const submits = 5;
  const prefix = `contact-spot-${bench.runId}-`;
  const unexpected: string[] = [];
  for (let i = 0; i < submits; i++) {
    const email = `${prefix}${i}@bench.test`;
    const poll = fetch(
      `${bench.base}/_inbox/api/latest?to=${encodeURIComponent(email)}&wait=5000`,
      { signal: AbortSignal.timeout(10_000) },
    ).then((res) => res.status);
    const res = await fetch(`${bench.base}/api/contact`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Bench Sender',
        email,
        message: contactMessage(CONTACT_MESSAGE_BYTES),
      }),
      signal: AbortSignal.timeout(5000),
    });
    const answer = `${res.status} ${await res.text()}`;
    if (answer !== '202 {"status":"pending"}') unexpected.push(answer);
    const written = await countSubmitted(bench.db, email);
    if (written.messages !== 1 || written.verifications !== 1 || written.emails !== 1)
      unexpected.push(`${email}: ${JSON.stringify(written)}`);
    const inbox = await poll.catch(() => 0);
    if (inbox !== 200) unexpected.push(`${email}: no verification email in the inbox (${inbox})`);
  }
  if (unexpected.length) log(`contact submit spot-check: ${unexpected.slice(0, 3).join('; ')}`);
  return { submits, mismatches: unexpected.length, examples: unexpected.slice(0, 5) };
}

/** The exact answers outside wrk: accepted once, then already_accepted; one delivery each. */
async function spotCheckContactConfirm(bench: Bench) {
  const batch = await bench.newContactBatch(20);
  const tokens = readFileSync(batch.tokenFile, 'utf8').split('\n').filter(Boolean);
  const send = async (token: string) => {
    const res = await fetch(`${bench.base}/api/contact/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      signal: AbortSignal.timeout(5000),
    });
    return `${res.status} ${await res.text()}`;
  };
  const unexpected: string[] = [];
  const before: ContactTotals = await contactTotals(bench.db);
  for (const token of tokens) {
    const first = await send(token);
    const second = await send(token);
    if (first !== '200 {"status":"accepted"}') unexpected.push(first);
    if (second !== '200 {"status":"already_accepted"}') unexpected.push(second);
  }
  const after = await contactTotals(bench.db);
  const deliveries = after.deliveries - before.deliveries;
  if (deliveries !== tokens.length)
    unexpected.push(`${deliveries} deliveries queued for ${tokens.length} messages`);
  await waitForOutbox(bench.db);
  if (unexpected.length)
    log(`contact confirm spot-check: unexpected ${unexpected.slice(0, 3).join('; ')}`);
  return { tokens: tokens.length, mismatches: unexpected.length, examples: unexpected.slice(0, 5) };
}

function roundUp(n: number, max: number): number {
  return Math.min(max, Math.ceil(n / 1000) * 1000);
}

/** The wrk command with paths relative to the repository, as a reader would type it. */
function displayCommand(command: string): string {
  return command.replaceAll(`${ROOT}/`, '');
}

interface Row {
  figure: string;
  value: string;
  ceiling: string;
  ratio: string;
  target: string;
  /** null: shown for information, no target. */
  pass: boolean | null;
}

function latencyRow(figure: string, us: number, ceilingUs?: number): Row {
  return {
    figure,
    value: fmtMs(ms(us)),
    ceiling: ceilingUs === undefined ? '' : `${fmtMs(ms(ceilingUs))} (bare)`,
    ratio: ceilingUs === undefined ? '' : `${(us / ceilingUs).toFixed(1)}×`,
    target: '',
    pass: null,
  };
}

function cpuRow(figure: string, cpu: CpuUse | null, ceiling?: CpuUse | null): Row {
  return {
    figure,
    value: showCpu(cpu),
    ceiling: ceiling === undefined ? '' : `${showCpu(ceiling)} (bare)`,
    ratio:
      cpu && ceiling ? `${(cpu.serverMsPerRequest / ceiling.serverMsPerRequest).toFixed(1)}×` : '',
    target: '',
    pass: null,
  };
}

/** Server CPU per request (its main thread in brackets), and how busy the server and machine were. */
function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

function markdownTable(rows: Row[]): string {
  const header = ['figure', 'value', 'ceiling', 'ratio', 'target', 'pass/fail'];
  const cells = rows.map((r) => [
    r.figure,
    r.value,
    r.ceiling || '—',
    r.ratio || '—',
    r.target || '—',
    r.pass === null ? 'info' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
  ].join('\n');
}

/** The pass with the most requests/s: the one the noisy machine disturbed least. */
function best<T extends WrkRun>(runs: T[]): T {
  const first = runs[0];
  if (!first) throw new Error('no runs');
  return runs.reduce((a, b) => (b.rps > a.rps ? b : a), first);
}

async function hashSamples(count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await hashPassword(`${PASSWORD} ${i}`);
    samples.push(performance.now() - t);
  }
  return samples;
}

/** Hashing alone with `inFlight` hashes at a time (the hash pool runs them): what the machine gives. */
async function hashThroughput(inFlight: number, count: number) {
  const cpu = process.cpuUsage();
  const elapsedMs = await keepInFlight(inFlight, count, (n) => hashPassword(`${PASSWORD} ${n}`));
  const seconds = elapsedMs / 1000;
  const used = process.cpuUsage(cpu);
  return {
    inFlight,
    count,
    perSecond: count / seconds,
    cpuMsPerHash: (used.user + used.system) / 1000 / count,
  };
}

/**
 * One hash alone against one hash on every core at once, wall time per hash, for Mailproof's
 * setting and for OWASP's 9 MiB, t=4 one of the same strength (whose working sets fit in the
 * last-level cache together on more machines). Three rounds, alternated; the median counts.
 */
async function memoryContention(cores: number) {
  const settings = [
    { label: '19 MiB, t=2 (Mailproof)', options: ARGON2ID_OPTIONS },
    {
      label: "9 MiB, t=4 (OWASP's equal)",
      options: { ...ARGON2ID_OPTIONS, memoryCost: 9_216, timeCost: 4 },
    },
  ];
  const perHash = async (options: object, inFlight: number, count: number) => {
    const elapsedMs = await keepInFlight(inFlight, count, (n) =>
      hashPool.run({ op: 'hash', password: `${PASSWORD} ${n}`, options }),
    );
    return (elapsedMs * inFlight) / count;
  };

  const samples = settings.map(() => ({ alone: [] as number[], together: [] as number[] }));
  for (let round = 0; round < 3; round++) {
    for (const [i, { options }] of settings.entries()) {
      await perHash(options, cores, cores * 2);
      samples[i]?.alone.push(await perHash(options, 1, 20));
      samples[i]?.together.push(await perHash(options, cores, 20 * cores));
    }
  }
  return {
    lastLevelCache: lastLevelCache(),
    settings: settings.map(({ label, options }, i) => ({
      label,
      options,
      aloneMs: median(samples[i]?.alone ?? []),
      togetherMs: median(samples[i]?.together ?? []),
      samples: samples[i],
    })),
  };
}

/** The least an email can cost: render, build the MIME message and store it, in this process. */
async function measureDeliveryFloor(dir: string): Promise<{ median: number; samplesMs: number[] }> {
  const inbox = openInboxStore(dir, { retain: 1000 });
  const branding = { appName: 'Mailproof', brandColor: '#2f5bd3', baseUrl: 'http://127.0.0.1' };
  const samples: number[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      const t = performance.now();
      const rendered = renderEmail(
        'verify-email',
        {
          url: `http://127.0.0.1/verify/${randomBytes(32).toString('base64url')}`,
          code: String(10_000_000 + i),
          linkMinutes: 60,
          codeMinutes: 10,
        },
        branding,
      );
      const raw = await composeMime({
        from: 'Mailproof <no-reply@127.0.0.1>',
        to: `floor-${i}@bench.test`,
        ...rendered,
        messageId: `<floor-${i}@127.0.0.1>`,
        provenance: {
          template: 'verify-email',
          flow: 'signup',
          requestId: null,
          outboxId: String(i),
          attempt: 1,
        },
      });
      await inbox.ingest(raw, { from: null, to: [`floor-${i}@bench.test`] });
      if (i >= 10) samples.push(performance.now() - t); // the first ten warm the code up
    }
  } finally {
    inbox.close();
  }
  return { median: median(samples), samplesMs: samples };
}

/** Waits (at most 60 s) until the worker has sent everything; returns how long that took. */
async function waitForOutbox(db: Db): Promise<{ waitedMs: number; pendingAtStart: number }> {
  const start = performance.now();
  const pendingAtStart = (await outboxCounts(db.kysely)).pending;
  await waitUntil(
    'the outbox to drain',
    async () => (await outboxCounts(db.kysely)).pending === 0,
    {
      timeoutMs: 60_000,
    },
  );
  return { waitedMs: performance.now() - start, pendingAtStart };
}

interface LatencySamples {
  /** ms from the sign-up response to the inbox API answering with the message. */
  afterResponse: number[];
  /** ms from the sign-up response to the inbox's own receivedAt stamp (whole ms). */
  stampedAfterResponse: number[];
  /** ms from sending the sign-up to the inbox answering. */
  afterRequest: number[];
  missing: number;
  failed: number;
}

/**
 * Sign-ups through fetch, `concurrency` at a time. For each, a long poll on the inbox API starts
 * first; the address is new, so the poll can only answer with this sign-up's message.
 */
async function inboxLatency(
  base: string,
  runId: string,
  tag: string,
  total: number,
  concurrency: number,
): Promise<LatencySamples> {
  const samples: LatencySamples = {
    afterResponse: [],
    stampedAfterResponse: [],
    afterRequest: [],
    missing: 0,
    failed: 0,
  };
  const one = async (n: number) => {
    const to = `inbox-${runId}-${tag}-${n}@bench.test`;
    const poll = fetch(`${base}/_inbox/api/latest?to=${encodeURIComponent(to)}&wait=5000`, {
      signal: AbortSignal.timeout(10_000),
    }).then(async (res) => ({ at: performance.now(), res, body: await res.json() }));
    const sent = performance.now();
    const signup = await fetch(`${base}/api/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: to, password: PASSWORD }),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => null);
    const answered = performance.now();
    if (!signup) {
      samples.failed += 1;
      await poll.catch(() => null);
      return;
    }
    const answeredEpoch = performance.timeOrigin + answered;
    await signup.arrayBuffer();
    const polled = await poll.catch(() => null);
    if (signup.status !== 202) {
      samples.failed += 1;
      return;
    }
    if (polled?.res.status !== 200) {
      samples.missing += 1;
      return;
    }
    samples.afterResponse.push(polled.at - answered);
    samples.afterRequest.push(polled.at - sent);
    const receivedAt = Date.parse((polled.body as { receivedAt: string }).receivedAt);
    samples.stampedAfterResponse.push(receivedAt - answeredEpoch);
  };
  for (let n = 0; n < total; n += concurrency) {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, total - n) }, (_, i) => one(n + i)),
    );
  }
  return samples;
}

function summarise(s: LatencySamples) {
  const stats = (xs: number[]) => ({
    p50: median(xs),
    p99: percentile(xs, 99),
    max: Math.max(...xs),
  });
  return {
    count: s.afterResponse.length,
    missing: s.missing,
    failed: s.failed,
    afterResponseMs: stats(s.afterResponse),
    stampedAfterResponseMs: stats(s.stampedAfterResponse),
    afterRequestMs: stats(s.afterRequest),
  };
}

interface GitState {
  commit: string;
  dirty: boolean;
  /** A hash of the uncommitted changes to what the server runs, to notice them changing. */
  changes: string;
}

function gitCommit(): GitState | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT }).toString().trim();
    const paths = ['--', 'src', 'bin', 'package.json'];
    const status = git('status', '--porcelain', ...paths);
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      // Uncommitted changes to what the server runs make the figures belong to no commit.
      dirty: status !== '',
      changes: createHash('sha256')
        .update(`${status}\n${git('diff', 'HEAD', ...paths)}`)
        .digest('hex')
        .slice(0, 12),
    };
  } catch {
    return null;
  }
}

function describeCommit(state: GitState | null): string {
  if (!state) return 'commit unknown';
  return `commit ${state.commit}${state.dirty ? ` with uncommitted changes to src/ (${state.changes})` : ''}`;
}

async function stopChildren(): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}

function cleanUp(): void {
  if (tmpDir && !flags.keep) rmSync(tmpDir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the servers`);
    stopChildren().finally(() => {
      cleanUp();
      process.exit(130);
    });
  });
}

main().then(
  async (code) => {
    cleanUp();
    process.exitCode = code;
  },
  async (error: unknown) => {
    console.error(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    await stopChildren();
    cleanUp();
    process.exitCode = 2;
  },
);
