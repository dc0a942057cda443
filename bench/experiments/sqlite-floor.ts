// The SQLite floor of one confirm: its two statements in one synchronous better-sqlite3
// transaction, under several pragma variants (docs/performance.md, "Floors measured").
import { copyFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { confirmFixtureFile } from '../fixture.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sq-'));
const N = 100000;
const { file, tokenHashes: hashes } = await confirmFixtureFile(dir, N);
copyFileSync(file, file + '.orig');
function run(name: string, pragmas: string[], mode: 'full' | 'select' | 'spendonly') {
  copyFileSync(file + '.orig', file);
  const raw = new SQLite(file);
  raw.pragma('journal_mode = WAL');
  for (const p of pragmas) raw.pragma(p);
  const spend = raw.prepare(
    'update "verifications" set "used_at" = ? where "token_hash" = ? and "purpose" = ? and "used_at" is null and "expires_at" > ? returning "id", "user_id", "target"',
  );
  const sel = raw.prepare(
    'select "id", "user_id", "target" from "verifications" where "token_hash" = ? and "purpose" = ?',
  );
  const mark = raw.prepare(
    'update "users" set "email_verified_at" = ?, "updated_at" = ? where "id" = ? and "email_verified_at" is null',
  );
  const tx = raw.transaction((h: string, now: number) => {
    const r = spend.get(now, h, 'signup', now) as { user_id: string };
    if (r && mode === 'full') mark.run(now, now, r.user_id);
    return r;
  });
  const M = 30000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) {
    if (mode === 'select') sel.get(hashes[i] as string, 'signup');
    else tx(hashes[i] as string, Date.now());
  }
  const t1 = process.hrtime.bigint();
  console.log(name.padEnd(40), mode.padEnd(10), (Number(t1 - t0) / 1000 / M).toFixed(1), 'µs/op');
  raw.close();
}
run('NORMAL default ckpt', ['synchronous = NORMAL', 'cache_size = -65536'], 'full');
run(
  'NORMAL no ckpt',
  ['synchronous = NORMAL', 'cache_size = -65536', 'wal_autocheckpoint = 0'],
  'full',
);
run('OFF no ckpt', ['synchronous = OFF', 'cache_size = -65536', 'wal_autocheckpoint = 0'], 'full');
run(
  'NORMAL no ckpt',
  ['synchronous = NORMAL', 'cache_size = -65536', 'wal_autocheckpoint = 0'],
  'spendonly',
);
run('select', ['cache_size = -65536'], 'select');
run(
  'NORMAL no ckpt mmap',
  [
    'synchronous = NORMAL',
    'cache_size = -65536',
    'wal_autocheckpoint = 0',
    'mmap_size = 268435456',
  ],
  'full',
);
run(
  'NORMAL no ckpt excl',
  [
    'synchronous = NORMAL',
    'cache_size = -65536',
    'wal_autocheckpoint = 0',
    'locking_mode = EXCLUSIVE',
  ],
  'full',
);
run('NORMAL default ckpt', ['synchronous = NORMAL', 'cache_size = -65536'], 'full');
