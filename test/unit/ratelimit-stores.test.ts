// Limits shared between instances: two limiters on one store (two processes' worth) count together.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import {
  createRateLimits,
  type LimitStore,
  RATE_LIMIT_TABLE,
  type RateLimits,
} from '../../src/ratelimit/limiter.ts';
import { POSTGRES_URL } from '../support/runtime.ts';

const config = loadConfig({
  dotenvPath: false,
  env: { NODE_ENV: 'test', RATE_LIMIT_SIGNUP_ADDRESS: '3/1h', RATE_LIMIT_SIGNUP_CLIENT: '100/1h' },
}).rateLimits;

const REDIS_URL = process.env.MAILPROOF_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Two instances' limiters on one store: each hit counts for both. */
async function sharedLimitHolds(store: LimitStore): Promise<RateLimits[]> {
  const a = createRateLimits(config, store);
  const b = createRateLimits(config, store);
  await Promise.all([a.ready(), b.ready()]);
  const address = `shared-${Math.random().toString(36).slice(2)}@example.com`;
  const check: Array<['signupPerAddress', string]> = [['signupPerAddress', address]];
  expect(await a.consume(check)).toEqual({ ok: true });
  expect(await b.consume(check)).toEqual({ ok: true });
  expect(await a.consume(check)).toEqual({ ok: true });
  const fourth = await b.consume(check);
  expect(fourth.ok).toBe(false);
  expect(fourth.ok ? 0 : fourth.retryAfterSeconds).toBeGreaterThan(3500);
  expect((await a.consume(check)).ok).toBe(false);
  // Another address is not affected, on either instance.
  expect(await b.consume([['signupPerAddress', `other-${address}`]])).toEqual({ ok: true });
  return [a, b];
}

describe('rate limits shared through the database or Redis', () => {
  it('SQLite: two limiters on one database file share their counts, keyed by hashes only', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-limits-'));
    const first = new SQLite(path.join(dir, 'app.db'));
    const second = new SQLite(path.join(dir, 'app.db'));
    cleanups.push(() => {
      first.close();
      second.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const a = createRateLimits(config, { kind: 'sqlite', database: first });
    const b = createRateLimits(config, { kind: 'sqlite', database: second });
    await Promise.all([a.ready(), b.ready()]);
    const check: Array<['signupPerAddress', string]> = [['signupPerAddress', 'Ada@Example.com']];
    for (let i = 0; i < 3; i++) expect((await (i % 2 ? a : b).consume(check)).ok).toBe(true);
    expect((await a.consume(check)).ok).toBe(false);
    const keys = first.prepare(`SELECT key FROM ${RATE_LIMIT_TABLE}`).all() as Array<{
      key: string;
    }>;
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.map((k) => k.key).join(' ')).not.toMatch(/ada|example/i);
  });

  it('PostgreSQL: two limiters on two pools share their counts', async () => {
    const schema = `mp_limits_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect().catch((error: Error) => {
      throw new Error(`PostgreSQL is not reachable at ${POSTGRES_URL}: ${error.message}`);
    });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const pools = [0, 1].map(() => new pg.Pool({ connectionString: url.toString(), max: 2 }));
    cleanups.push(async () => {
      await Promise.all(pools.map((p) => p.end()));
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    });
    const [a, b] = pools.map((pool) => createRateLimits(config, { kind: 'postgres', pool }));
    if (!a || !b) throw new Error('two limiters expected');
    await Promise.all([a.ready(), b.ready()]);
    const check: Array<['signupPerAddress', string]> = [['signupPerAddress', 'pg@example.com']];
    for (let i = 0; i < 3; i++) expect((await (i % 2 ? a : b).consume(check)).ok).toBe(true);
    const limited = await a.consume(check);
    expect(limited.ok).toBe(false);
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${schema}.${RATE_LIMIT_TABLE}`,
    );
    expect(rows[0].n).toBeGreaterThan(0);
  });

  it('Redis (REDIS_URL): two clients share their counts', async () => {
    const clients = [0, 1].map(
      () => new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 }),
    );
    for (const client of clients) {
      await client.connect().catch((error: Error) => {
        throw new Error(
          `Redis is not reachable at ${REDIS_URL} (${error.message}); start it with redis-server or set MAILPROOF_TEST_REDIS_URL`,
        );
      });
    }
    cleanups.push(async () => {
      for (const client of clients) client.disconnect();
    });
    const [a] = await sharedLimitHolds({ kind: 'redis', client: clients[0] as Redis });
    const b = createRateLimits(config, { kind: 'redis', client: clients[1] as Redis });
    expect(a?.storeKind).toBe('redis');
    expect(b.storeKind).toBe('redis');
  });

  it('memory: each limiter counts alone (a runtime without a store)', async () => {
    const a = createRateLimits(config);
    const b = createRateLimits(config);
    const check: Array<['signupPerAddress', string]> = [['signupPerAddress', 'm@example.com']];
    for (let i = 0; i < 3; i++) expect((await a.consume(check)).ok).toBe(true);
    expect((await a.consume(check)).ok).toBe(false);
    expect((await b.consume(check)).ok).toBe(true);
  });

  it('reset() starts every count afresh', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailproof-limits-'));
    const database = new SQLite(path.join(dir, 'app.db'));
    cleanups.push(() => {
      database.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const limits = createRateLimits(config, { kind: 'sqlite', database });
    const check: Array<['signupPerAddress', string]> = [['signupPerAddress', 'r@example.com']];
    for (let i = 0; i < 3; i++) await limits.consume(check);
    expect((await limits.consume(check)).ok).toBe(false);
    limits.reset();
    expect((await limits.consume(check)).ok).toBe(true);
  });

  it('a store that fails falls back to a per-process limit instead of an error', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    const limits = createRateLimits(config, { kind: 'postgres', pool });
    await limits.ready();
    await pool.end(); // every query now fails
    const check: Array<['signupPerAddress', string]> = [['signupPerAddress', 'down@example.com']];
    for (let i = 0; i < 3; i++) expect((await limits.consume(check)).ok).toBe(true);
    expect((await limits.consume(check)).ok).toBe(false);
  });
});
