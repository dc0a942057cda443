// A real SpamAssassin spamd on a free loopback port, started once per test file (it takes a few
// seconds to load its rules). Debian 12 ships it in the `spamd` package, apart from `spamassassin`.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SPAMD_INSTALL_HINT = 'apt-get install spamd (Debian 12; older releases: spamassassin)';

export interface Spamd {
  host: string;
  port: number;
  /** What spamd has logged so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

/** /usr/sbin is not on an ordinary user's PATH on Debian, and that is where spamd lives. */
export function findSpamd(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, 'spamd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/**
 * Why the spamd-backed tests cannot run here, or null when they can. In CI they always run: a
 * missing spamd must fail the build (startSpamd throws), never skip quietly.
 */
export function spamdSkipReason(): string | null {
  if (process.env.CI || findSpamd()) return null;
  return `spamd is not installed (${SPAMD_INSTALL_HINT})`;
}

/**
 * --local: no network tests (no DNS blocklists, Razor, Pyzor, DCC), so scores depend only on the
 * rules and the message. --nouser-config and use_bayes 0: no per-user preferences and no Bayes
 * database, so a developer's own trained database cannot change a score. As root, spamd never
 * checks a message as root: --username=nobody runs its children as nobody from the start, instead
 * of falling back to nobody with a warning on every connection.
 */
function spamdArgs(port: number, pidfile: string): string[] {
  return [
    `--listen=127.0.0.1:${port}`,
    '--local',
    '--nouser-config',
    '--cf=use_bayes 0',
    '--max-children=1',
    '--syslog=stderr',
    `--pidfile=${pidfile}`,
    ...(process.getuid?.() === 0 ? ['--username=nobody'] : []),
  ];
}

export async function startSpamd(): Promise<Spamd> {
  const binary = findSpamd();
  if (!binary) {
    throw new Error(
      process.env.CI
        ? `spamd is required in CI: ${SPAMD_INSTALL_HINT}`
        : `spamd is not installed: ${SPAMD_INSTALL_HINT}`,
    );
  }
  // The free port is only free until spamd binds it: another process may take it first.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary);
    } catch (error) {
      if (!(error instanceof SpamdExitedError) || attempt === 3) throw error;
    }
  }
}

class SpamdExitedError extends Error {}

async function launch(binary: string): Promise<Spamd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-spamd-'));
  const port = await freePort();
  let log = '';
  const child = spawn(binary, spamdArgs(port, path.join(dir, 'spamd.pid')), {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The C locale keeps the report in English; a temp HOME keeps spamd out of the user's files.
    env: { ...process.env, LANG: 'C', LC_ALL: 'C', HOME: dir },
  });
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    await stopChild(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPong(port, child);
  } catch (error) {
    await stop();
    const Failure = error instanceof SpamdExitedError ? SpamdExitedError : Error;
    throw new Failure(
      `spamd did not start on 127.0.0.1:${port}: ${(error as Error).message}\n${log}`,
    );
  }
  return { host: '127.0.0.1', port, log: () => log, stop };
}

async function waitForPong(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new SpamdExitedError(`spamd exited (${child.exitCode ?? child.signalCode})`);
    }
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no PONG within ${START_TIMEOUT_MS} ms`);
}

/** `PING SPAMC/1.5` answered by `SPAMD/1.5 0 PONG`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(/^SPAMD\/[\d.]+ 0 PONG\r\n/.test(answer)));
    socket.end('PING SPAMC/1.5\r\n\r\n');
  });
}

/** SIGTERM makes spamd stop its children and remove its pidfile; SIGKILL if it hangs. */
async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}
