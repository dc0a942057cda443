// Helpers for bench/run.ts: child processes, free ports, wrk, and percentiles.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A loopback port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  name: string;
  process: ChildProcess;
  logFile: string;
  exited: boolean;
  stop(): Promise<void>;
}

/** Starts a child whose output goes to `logFile`; `stop()` ends it by its own pid only. */
export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; logFile: string },
): Child {
  const log = createWriteStream(options.logFile);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const handle: Child = {
    name,
    process: child,
    logFile: options.logFile,
    exited: false,
    async stop() {
      if (handle.exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const graceful = await Promise.race([gone.then(() => true), sleep(15_000).then(() => false)]);
      if (!graceful && !handle.exited) {
        child.kill('SIGKILL');
        await Promise.race([gone, sleep(5_000)]);
      }
      log.end();
    },
  };
  child.once('exit', () => {
    handle.exited = true;
  });
  return handle;
}

/** Polls `check` every 100 ms for at most `timeoutMs`; fails early if the child exits. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; child?: Child },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const maxTries = Math.ceil(options.timeoutMs / 100) + 1;
  for (let i = 0; i < maxTries && Date.now() < deadline; i++) {
    if (options.child?.exited) {
      throw new Error(
        `${options.child.name} exited while waiting for ${what}; see ${options.child.logFile}`,
      );
    }
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}`);
}

export function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** What bench/lua/*.lua print from wrk's done() hook, on one line starting with WRK_JSON. */
export interface WrkResult {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Requests the script built (tokens taken from the file; one is built by wrk's check, unsent). */
  built: number;
  /** Requests built after the thread's slice of tokens ran out (sent with an unknown token). */
  exhausted: number;
  /** Responses the script's response() hook found wrong (scripts without the hook report 0). */
  unexpected: number;
}

export interface WrkRun {
  command: string;
  result: WrkResult;
  /** requests / measured duration, as wrk's own "Requests/sec" line. */
  rps: number;
  errorCount: number;
  /** The server's CPU during the pass (Linux), when its pid was given. */
  cpu: CpuUse | null;
}

export const WRK = process.env.WRK ?? '/usr/bin/wrk';

export function assertWrk(): void {
  if (!existsSync(WRK)) {
    throw new Error(
      `wrk not found at ${WRK}: install it (apt-get install wrk) or set WRK=/path/to/wrk`,
    );
  }
}

export async function runWrk(options: {
  url: string;
  script: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  scriptArgs: string[];
  timeoutSeconds?: number;
  /** The server's pid, to measure its CPU time over the pass. */
  serverPid?: number;
  /** Count the server's child processes (gunicorn's workers) as its other threads. */
  serverChildren?: boolean;
}): Promise<WrkRun> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    `--timeout`,
    `${options.timeoutSeconds ?? 2}s`,
    '-s',
    options.script,
    options.url,
    '--',
    ...options.scriptArgs,
  ];
  const command = `wrk ${args.join(' ')}`;
  const cpuBefore = cpuSample(options.serverPid, options.serverChildren);
  const child = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // wrk stops itself after -d; this bound only guards against a hang.
  const limitMs = (options.durationSeconds + 30) * 1000;
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  const cpuAfter = cpuSample(options.serverPid, options.serverChildren);
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || !line) {
    throw new Error(`${command} failed (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const result = JSON.parse(line.slice('WRK_JSON '.length)) as WrkResult;
  const e = result.errors;
  return {
    command,
    result,
    rps: result.requests / (result.duration_us / 1e6),
    // A non-2xx answer may be counted by wrk (status > 399) and by the script's response() hook.
    errorCount:
      e.connect +
      e.read +
      e.write +
      e.timeout +
      Math.max(e.status, result.unexpected) +
      result.exhausted,
    cpu: cpuUse(cpuBefore, cpuAfter, result.requests, result.duration_us / 1e6),
  };
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/**
 * Runs `count` jobs, keeping `inFlight` of them going at once; returns the wall time in ms. The
 * job gets its number, from 1.
 */
export async function keepInFlight(
  inFlight: number,
  count: number,
  job: (n: number) => Promise<unknown>,
): Promise<number> {
  let started = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < count) {
        started += 1;
        await job(started);
      }
    }),
  );
  return performance.now() - start;
}

/** The size of the CPU's last-level cache as Linux reports it ("32 MiB, shared"), or "unknown". */
export function lastLevelCache(): string {
  try {
    const size = readFileSync('/sys/devices/system/cpu/cpu0/cache/index3/size', 'utf8').trim();
    const kib = /^(\d+)K$/.exec(size)?.[1];
    return kib ? `${Number(kib) / 1024} MiB, shared` : size;
  } catch {
    return 'unknown';
  }
}

export function median(samples: number[]): number {
  return percentile(samples, 50);
}

/** CPU seconds a process has used, split into its main thread and all its other threads. */
export interface CpuSample {
  mainSeconds: number;
  otherSeconds: number;
  /** The whole machine: busy and total core-seconds since boot (from /proc/stat). */
  machineBusySeconds: number;
  machineTotalSeconds: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * Reads /proc (Linux only); null elsewhere or once the process has gone. With `children`, the
 * threads of the process's direct children count as its other threads (a pre-fork server's
 * workers, which must then live through the pass: a worker replaced meanwhile is not counted).
 */
export function cpuSample(pid: number | undefined, children = false): CpuSample | null {
  if (pid === undefined || !existsSync(`/proc/${pid}/task`)) return null;
  try {
    const processes = [pid];
    if (children) {
      const list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (list) processes.push(...list.split(/\s+/).map(Number));
    }
    // A process's own stat counts the threads that have already exited too (a thread-per-request
    // server's), which its task/ folder no longer lists; the main thread is read from task/.
    const ticks = (file: string) => {
      const stat = readFileSync(file, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime + stime
    };
    const main = ticks(`/proc/${pid}/task/${pid}/stat`);
    const other = processes.reduce((sum, p) => sum + ticks(`/proc/${p}/stat`), 0) - main;
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0); // idle + iowait
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0); // without guest time (in user)
    return {
      mainSeconds: main / TICKS_PER_SECOND,
      otherSeconds: other / TICKS_PER_SECOND,
      machineBusySeconds: (total - idle) / TICKS_PER_SECOND,
      machineTotalSeconds: total / TICKS_PER_SECOND,
    };
  } catch {
    return null;
  }
}

export interface CpuUse {
  /** Server CPU per request, in ms: main thread, other threads (hashing, GC), and both. */
  mainMsPerRequest: number;
  otherMsPerRequest: number;
  serverMsPerRequest: number;
  /** Cores busy on average during the pass: the server, and everything on the machine. */
  serverCores: number;
  machineCores: number;
}

export function cpuUse(
  before: CpuSample | null,
  after: CpuSample | null,
  requests: number,
  seconds: number,
): CpuUse | null {
  if (!before || !after || requests <= 0 || seconds <= 0) return null;
  const main = after.mainSeconds - before.mainSeconds;
  const other = after.otherSeconds - before.otherSeconds;
  return {
    mainMsPerRequest: (main * 1000) / requests,
    otherMsPerRequest: (other * 1000) / requests,
    serverMsPerRequest: ((main + other) * 1000) / requests,
    serverCores: (main + other) / seconds,
    machineCores: (after.machineBusySeconds - before.machineBusySeconds) / seconds,
  };
}

/** Milliseconds as the bench's tables show them: two decimals under 10 ms, one above. */
export function fmtMs(x: number): string {
  return `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
}

/** A server's CPU over a pass: per request (all threads, and the main one) and cores busy. */
export function showCpu(cpu: CpuUse | null | undefined): string {
  if (!cpu) return 'n/a';
  const t = (x: number) => (x < 1 ? `${Math.round(x * 1000)} µs` : `${x.toFixed(2)} ms`);
  return `${t(cpu.serverMsPerRequest)}/req (main thread ${t(cpu.mainMsPerRequest)}); server ${cpu.serverCores.toFixed(2)} of ${cpu.machineCores.toFixed(2)} busy cores`;
}
