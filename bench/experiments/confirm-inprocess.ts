// One confirm through the domain code, in process, sequentially: how much of a confirm's server
// time is the database work (compare with sqlite-floor.ts). npx tsx bench/experiments/confirm-inprocess.ts
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { confirmSignupToken } from '../../src/accounts/email-verification.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { migrateToLatest, openDatabase } from '../../src/db/index.ts';
import { createConfirmFixture } from '../fixture.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ci-'));
const file = path.join(dir, 'm.db');
const url = `sqlite:${file}`;
const config = loadConfig({
  env: { NODE_ENV: 'development', DATA_DIR: dir, DATABASE_URL: url },
  dotenvPath: false,
});
const N = 60000;
{
  const db = openDatabase(url);
  await migrateToLatest(db);
  await createConfirmFixture(db, config, {
    count: N,
    emailPrefix: 'b',
    tokenFile: path.join(dir, 't.txt'),
    passwordHash: 'x',
  });
  await db.close();
}
const tokens = readFileSync(path.join(dir, 't.txt'), 'utf8').trim().split('\n');
const db = openDatabase(url);
const ctx = {
  db,
  config,
  clock: { now: () => Date.now() },
  events: new EventEmitter(),
} as unknown as AppContext;
const withoutFast = { ...ctx, db: { ...db, sqlite: undefined } } as AppContext;
for (const [name, c, from] of [
  ['sync sqlite path', ctx, 0],
  ['kysely path', withoutFast, 20000],
  ['sync sqlite path', ctx, 40000],
] as const) {
  const M = 20000;
  const t0 = process.hrtime.bigint();
  // 16 at a time, as 16 connections would send them.
  for (let i = from; i < from + M; i += 16) {
    const rs = await Promise.all(
      tokens.slice(i, i + 16).map((token) => confirmSignupToken(c, token)),
    );
    for (const r of rs) if (r.status !== 'verified') throw new Error(r.status);
  }
  const t1 = process.hrtime.bigint();
  console.log(name.padEnd(20), (Number(t1 - t0) / 1000 / M).toFixed(1), 'µs/op');
}
await db.close();
