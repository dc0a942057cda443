// Hashing alone, eight passwords in flight, two ways in one process, alternated batch by batch so
// that both share the machine's noise (decision 018):
//   - "libuv": @node-rs/argon2's async hash() on libuv's pool, behind a limit of one per core
//     (Mailproof's path before decision 018);
//   - "pool": Mailproof's hash pool (src/accounts/hash-pool.ts).
// For each batch: hashes/s, the median of single hashes just before it, CPU per hash, and the
// share of the machine left idle (/proc/stat).
//
//   npx tsx bench/experiments/hash-handover.ts [rounds, default 6]
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { hash } from '@node-rs/argon2';
import { HashPool } from '../../src/accounts/hash-pool.ts';

const OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
const IN_FLIGHT = 8;
const BATCH = 100;
const cores = availableParallelism();
const rounds = Number(process.argv[2] ?? 6);

/** The machine's CPU time so far: user, nice, system, idle, … (in clock ticks). */
const machine = () =>
  (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);

const pool = new HashPool();
let active = 0;
const waiting: Array<() => void> = [];
const ways: Record<string, (password: string) => Promise<unknown>> = {
  async libuv(password) {
    if (active >= cores) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await hash(password, OPTIONS);
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  },
  pool: (password) => pool.run({ op: 'hash', password, options: OPTIONS }),
};

async function batch(run: (password: string) => Promise<unknown>, count: number) {
  const before = machine();
  const cpu = process.cpuUsage();
  const start = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (started < count) {
        started += 1;
        await run(`password ${started}`);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const ticks = machine().map((value, i) => value - (before[i] ?? 0));
  const total = ticks.reduce((a, b) => a + b, 0);
  return {
    perSecond: count / seconds,
    cpuMs: (used.user + used.system) / 1000 / count,
    idle: (100 * (ticks[3] ?? 0)) / total,
  };
}

async function singleMs(run: (password: string) => Promise<unknown>, count: number) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await run(`single ${i}`);
    samples.push(performance.now() - start);
  }
  return samples.sort((a, b) => a - b)[count >> 1] ?? Number.NaN;
}

const results: Record<
  string,
  Array<{ single: number; perSecond: number; cpuMs: number; idle: number }>
> = { libuv: [], pool: [] };
for (const run of Object.values(ways)) await batch(run, 20); // warm both
for (let round = 0; round < rounds; round++) {
  for (const name of round % 2 ? ['pool', 'libuv'] : ['libuv', 'pool']) {
    const run = ways[name] as (password: string) => Promise<unknown>;
    const single = await singleMs(run, 15);
    results[name]?.push({ single, ...(await batch(run, BATCH)) });
  }
}
await pool.close();

const mean = (rows: Array<Record<string, number>>, key: string) =>
  rows.reduce((sum, row) => sum + (row[key] ?? 0), 0) / rows.length;
for (const [name, rows] of Object.entries(results)) {
  const list = (key: 'perSecond' | 'single' | 'cpuMs' | 'idle') =>
    rows.map((row) => row[key].toFixed(1)).join(' ');
  const ceiling = cores / (mean(rows, 'single') / 1000);
  console.log(
    `${name.padEnd(5)} hashes/s ${list('perSecond')} | single ms ${list('single')} | ` +
      `CPU ms/hash ${list('cpuMs')} | idle % ${list('idle')}\n` +
      `      mean ${mean(rows, 'perSecond').toFixed(1)} hashes/s, ` +
      `${((100 * mean(rows, 'perSecond')) / ceiling).toFixed(1)} % of cores ÷ t`,
  );
}
