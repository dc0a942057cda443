// Memory-mapped reads against pread for the confirm's two statements, on a database the size of
// the bench's confirm phase (docs/performance.md, ninth session). Two copies of one fixture, one
// opened with mmap_size 0 and one with the server's map (1 GiB), both with the server's other
// pragmas; batches of confirms alternate between them, and each batch's CPU time (user + system)
// is read from the process.
//   npx tsx bench/experiments/sqlite-mmap.ts [accounts, default 400000] [rounds, default 8]
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { SQLITE_MMAP_BYTES } from '../../src/db/index.ts';
import { confirmFixtureFile } from '../fixture.ts';

const accounts = Number(process.argv[2] ?? 400_000);
const rounds = Number(process.argv[3] ?? 8);
const BATCH = 5_000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'mmap-'));
const { file, tokenHashes: hashes } = await confirmFixtureFile(dir, accounts);
console.log(`${accounts} accounts, ${(statSync(file).size / 2 ** 20).toFixed(0)} MiB`);
for (let i = hashes.length - 1; i > 0; i--) {
  const j = Math.floor(Math.random() * (i + 1));
  [hashes[i], hashes[j]] = [hashes[j] as string, hashes[i] as string];
}

function open(copy: string, mmap: number) {
  copyFileSync(file, copy);
  const raw = new SQLite(copy);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('cache_size = -4096');
  raw.pragma('temp_store = MEMORY');
  raw.pragma(`mmap_size = ${mmap}`);
  const spend = raw.prepare(
    'update "verifications" set "used_at" = ? where "token_hash" = ? and "purpose" = ? and "used_at" is null and "expires_at" > ? returning "id", "user_id", "target"',
  );
  const mark = raw.prepare(
    'update "users" set "email_verified_at" = ?, "updated_at" = ? where "id" = ? and "email_verified_at" is null',
  );
  const confirm = raw.transaction((hash: string, now: number) => {
    const row = spend.get(now, hash, 'signup', now) as { user_id: string } | undefined;
    if (!row) throw new Error('token not found');
    mark.run(now, now, row.user_id);
  });
  return { mmap, confirm, samples: [] as number[], raw };
}

const variants = [open(`${file}.a`, 0), open(`${file}.b`, SQLITE_MMAP_BYTES)];
let next = 0;
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? variants : [...variants].reverse();
  const start = next;
  for (const v of order) {
    const before = process.cpuUsage();
    for (let i = start; i < start + BATCH; i++) v.confirm(hashes[i] as string, Date.now());
    const used = process.cpuUsage(before);
    v.samples.push((used.user + used.system) / BATCH);
  }
  next += BATCH;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
for (const v of variants) {
  console.log(
    `mmap_size ${v.mmap}: median ${median(v.samples).toFixed(1)} µs a confirm (CPU); batches ${v.samples.map((s) => s.toFixed(1)).join(' ')}`,
  );
  v.raw.close();
}
rmSync(dir, { recursive: true, force: true });
