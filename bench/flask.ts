// The `flask` phase of bench/run.ts: the classic Flask email-confirmation tutorial app
// (bench/flask-tutorial/app.py) under the same confirm load as Mailproof, on the same machine, so
// the comparison the issue makes ("25× the classic Flask app") is measured in every full run.
//
// The tutorial's confirm is `GET /confirm/<token>` behind @login_required, answered with a 302,
// so wrk sends each token once as that GET with one logged-in session's cookie
// (bench/lua/confirm.lua with a GET prefix). It runs under two servers: gunicorn with
// gunicorn's recommended 2 × cores + 1 sync workers (how one would deploy it), and the Werkzeug
// development server the tutorial itself starts (`python manage.py runserver`, threaded). Every
// answer must be a 302 that confirmed an account of its own, counted in the app's database.
//
// It needs Debian's python3 with the tutorial's packages (see docs/performance.md); without them
// the phase prints one row saying what to install and is not counted as a failure.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type { PhaseContext, PhaseRow } from './drain.ts';
import {
  fmtMs,
  freePort,
  portAcceptsConnections,
  runWrk,
  showCpu,
  startChild,
  type WrkRun,
  waitUntil,
} from './support.ts';

export const FLASK_PYTHON = process.env.FLASK_PYTHON ?? '/usr/bin/python3';
export const FLASK_PACKAGES =
  'python3-flask python3-flask-sqlalchemy python3-flask-login python3-flask-bcrypt python3-flask-mail python3-flaskext.wtf python3-email-validator gunicorn';
const MODULES =
  'flask, flask_sqlalchemy, flask_login, flask_bcrypt, flask_mail, flask_wtf, email_validator, gunicorn';
const CONNECTIONS = 16;
const THREADS = 2;
const SECONDS = 6; // wrk divides by its whole -d: at least 5 s
const WARM_SECONDS = 2;
const WARM_TOKENS = 3000;
// A slow server queues 16 requests deep: give an answer up to 10 s before it counts as a timeout.
const TIMEOUT_SECONDS = 10;

interface FlaskRun extends WrkRun {
  server: string;
  tokens: number;
  confirmed: number;
  notConfirmed: number;
}

/** Which of the tutorial's Python modules are missing, or '' when all import. */
function missingModules(): string {
  try {
    execFileSync(FLASK_PYTHON, ['-c', `import ${MODULES}`], { stdio: 'pipe' });
    return '';
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    return stderr.trim().split('\n').at(-1) ?? 'python3 failed';
  }
}

export async function flaskPhase(
  ctx: PhaseContext,
  mailproof: { rps: number; p99Us: number } | null,
): Promise<{ rows: PhaseRow[]; data: unknown }> {
  const missing = missingModules();
  if (missing) {
    ctx.log(`flask: skipped (${missing})`);
    return {
      rows: [
        {
          figure: 'classic Flask tutorial app, confirm (skipped)',
          value: `${FLASK_PYTHON} cannot import the tutorial's packages: ${missing}`,
          ceiling: `apt-get install ${FLASK_PACKAGES}`,
          ratio: '',
          target: '',
          pass: null,
        },
      ],
      data: { skipped: missing },
    };
  }
  const appDir = path.join(ctx.root, 'bench', 'flask-tutorial');
  const dir = path.join(ctx.tmpDir, 'flask');
  mkdirSync(dir, { recursive: true });
  const dbFile = path.join(dir, 'dev.sqlite');
  const env = {
    ...process.env,
    FLASK_TUTORIAL_DB: dbFile,
    PYTHONDONTWRITEBYTECODE: '1', // no __pycache__ in the repository
    MAIL_SUPPRESS_SEND: 'true',
  };
  let batchNo = 0;
  const fixture = (count: number) => {
    batchNo += 1;
    const prefix = `flask-${ctx.runId}-b${batchNo}-`;
    const tokenFile = path.join(dir, `tokens-${batchNo}.txt`);
    const out = execFileSync(
      FLASK_PYTHON,
      ['fixture.py', dbFile, prefix, String(count), tokenFile],
      { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    const line = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as {
      cookie: string;
      seconds: number;
    };
    return { prefix, tokenFile, count, cookie: line.cookie, seconds: line.seconds };
  };
  const countConfirmed = (prefix: string) => {
    const db = new SQLite(dbFile, { readonly: true, timeout: 10_000 });
    try {
      const row = db
        .prepare('SELECT count(*) AS n FROM users WHERE confirmed = 1 AND email LIKE ?')
        .get(`${prefix}%`) as { n: number };
      return row.n;
    } finally {
      db.close();
    }
  };

  const workers = 2 * ctx.cores + 1;
  const servers = [
    {
      name: `gunicorn, ${workers} sync workers`,
      command: [FLASK_PYTHON, '-m', 'gunicorn', '--workers', String(workers), '--bind'],
      bind: (port: number) => [`127.0.0.1:${port}`, 'app:create_app()'],
      children: true,
      portEnv: false,
    },
    {
      name: 'Werkzeug development server, threaded (as the tutorial runs it)',
      command: [FLASK_PYTHON, 'app.py'],
      bind: () => [],
      children: false,
      portEnv: true,
    },
  ];
  const runs: FlaskRun[] = [];
  for (const [i, s] of servers.entries()) {
    const port = await freePort();
    const [command = FLASK_PYTHON, ...args] = [...s.command, ...s.bind(port)];
    const child = startChild(`flask tutorial (${s.name})`, command, args, {
      cwd: appDir,
      env: { ...env, ...(s.portEnv ? { PORT: String(port) } : {}) },
      logFile: path.join(ctx.out, `flask-${i + 1}.log`),
    });
    ctx.children.push(child);
    try {
      await waitUntil(`the Flask tutorial app (${s.name})`, () => portAcceptsConnections(port), {
        timeoutMs: 30_000,
        child,
      });
      const url = `http://127.0.0.1:${port}/`;
      const pass = (batch: ReturnType<typeof fixture>, seconds: number) =>
        runWrk({
          url,
          script: path.join(ctx.lua, 'confirm.lua'),
          threads: THREADS,
          connections: CONNECTIONS,
          durationSeconds: seconds,
          timeoutSeconds: TIMEOUT_SECONDS,
          scriptArgs: [batch.tokenFile, String(THREADS), 'once', '/confirm/', batch.cookie],
          serverPid: child.process.pid,
          serverChildren: s.children,
        });
      const warm = await pass(fixture(WARM_TOKENS), WARM_SECONDS);
      const warmRate = warm.result.exhausted > 0 ? warm.result.built / WARM_SECONDS : warm.rps;
      // Generous, so that a pass never runs short (running short shows up as errors).
      const count = Math.max(5000, Math.ceil((warmRate * 3 * SECONDS) / 1000) * 1000);
      const batch = fixture(count);
      ctx.log(`flask fixture: ${count} tokens in ${batch.seconds.toFixed(1)} s (${s.name})`);
      const run = await pass(batch, SECONDS);
      const confirmed = countConfirmed(batch.prefix);
      const answered = run.result.requests - run.result.errors.status;
      const notConfirmed = Math.max(0, answered - confirmed);
      runs.push({
        ...run,
        server: s.name,
        tokens: count,
        confirmed,
        notConfirmed,
        errorCount: run.errorCount + notConfirmed,
      });
      ctx.log(
        `flask (${s.name}): ${run.rps.toFixed(0)} req/s, p99 ${(run.result.latency_us.p99 / 1000).toFixed(1)} ms, ` +
          `${confirmed} confirmed for ${run.result.requests} answers`,
      );
    } finally {
      await child.stop();
    }
  }

  const rows: PhaseRow[] = runs.map((r) => ({
    figure: `classic Flask tutorial app: confirm (GET /confirm/<token>), ${r.server}, ${CONNECTIONS} connections`,
    value: `${r.rps.toFixed(0)} req/s; p50 ${fmtMs(r.result.latency_us.p50 / 1000)}, p99 ${fmtMs(r.result.latency_us.p99 / 1000)}; ${showCpu(r.cpu)}`,
    ceiling: '',
    ratio: '',
    target: '',
    pass: null,
  }));
  const fastest = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  rows.push({
    figure: 'confirm, Mailproof against the classic Flask tutorial app (its faster server)',
    value: mailproof
      ? `${mailproof.rps.toFixed(0)} req/s, p99 ${fmtMs(mailproof.p99Us / 1000)}`
      : '— (the confirm phase did not run)',
    ceiling: `${fastest.rps.toFixed(0)} req/s, p99 ${fmtMs(fastest.result.latency_us.p99 / 1000)} (Flask, ${fastest.server.split(',')[0]})`,
    ratio: mailproof ? `${(mailproof.rps / fastest.rps).toFixed(0)}×` : '',
    target: '',
    pass: null,
  });
  const errors = runs.reduce((sum, r) => sum + r.errorCount, 0);
  rows.push({
    figure:
      'classic Flask tutorial app: confirm errors (4xx/5xx, not confirmed, socket, out of tokens)',
    value: String(errors),
    ceiling: '',
    ratio: '',
    target: '0',
    pass: errors === 0,
  });
  return { rows, data: { runs, mailproof } };
}
