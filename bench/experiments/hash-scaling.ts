// Why hashing alone falls short of `cores ÷ t` on some machines: the memory cost. For each of
// OWASP's five argon2id settings of equal strength (Password Storage Cheat Sheet: 46 MiB t=1,
// 19 MiB t=2, 12 MiB t=3, 9 MiB t=4, 7 MiB t=5), the time of one hash alone on one thread against
// the time of one hash while one hash runs on every core at once, through Mailproof's hash pool.
// The settings are alternated round by round so that they share the machine's noise.
//
// When `cores × memory` outgrows the shared last-level cache, the hashes running at once evict
// each other's blocks and each one slows down; a setting that still fits scales with the cores.
// Mailproof hashes with 19 MiB, t=2 (SPEC §2); the others are here only to show the effect.
//
//   npx tsx bench/experiments/hash-scaling.ts [rounds, default 3]
import { availableParallelism } from 'node:os';
import { HashPool } from '../../src/accounts/hash-pool.ts';
import { keepInFlight, lastLevelCache } from '../support.ts';

const SETTINGS = [
  { memoryCost: 47_104, timeCost: 1 },
  { memoryCost: 19_456, timeCost: 2 },
  { memoryCost: 12_288, timeCost: 3 },
  { memoryCost: 9_216, timeCost: 4 },
  { memoryCost: 7_168, timeCost: 5 },
];
const COUNT = 60;
const cores = availableParallelism();
const rounds = Number(process.argv[2] ?? 3);

const pool = new HashPool({ size: cores });

/** Milliseconds of wall time per hash, with `inFlight` hashes at a time. */
async function perHash(options: object, inFlight: number, count: number): Promise<number> {
  const elapsedMs = await keepInFlight(inFlight, count, (n) =>
    pool.run({ op: 'hash', password: `password ${n}`, options }),
  );
  // Each of the `inFlight` threads did count ÷ inFlight hashes in that time.
  return (elapsedMs * inFlight) / count;
}

console.log(`${cores} cores, last-level cache ${lastLevelCache()}, ${COUNT} hashes per figure`);
const results = new Map<string, { alone: number[]; together: number[] }>();
for (let round = 1; round <= rounds; round++) {
  for (const { memoryCost, timeCost } of SETTINGS) {
    const options = { algorithm: 2, memoryCost, timeCost, parallelism: 1 };
    const label = `${(memoryCost / 1024).toFixed(0)} MiB, t=${timeCost}`;
    await perHash(options, cores, cores * 2); // warms the threads and the allocator
    const alone = await perHash(options, 1, COUNT / 2);
    const together = await perHash(options, cores, COUNT);
    const entry = results.get(label) ?? { alone: [], together: [] };
    entry.alone.push(alone);
    entry.together.push(together);
    results.set(label, entry);
    console.log(
      `round ${round}  ${label.padEnd(13)} one alone ${alone.toFixed(2)} ms; ${cores} at once ${together.toFixed(2)} ms each; ` +
        `hashes/s at once against cores ÷ t: ${((alone / together) * 100).toFixed(0)} %`,
    );
  }
}

console.log('\n| setting | one alone | all cores at once, each | share of cores ÷ t |');
console.log('| --- | --- | --- | --- |');
for (const [label, { alone, together }] of results) {
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} ms`;
  const shares = alone.map((a, i) => (a / (together[i] as number)) * 100);
  console.log(
    `| ${label} | ${range(alone)} | ${range(together)} | ${Math.min(...shares).toFixed(0)}–${Math.max(...shares).toFixed(0)} % |`,
  );
}
await pool.close();
