// One mechanism for every limit. The counters live where every instance sees them: the app's own
// database (SQLite, PostgreSQL or MariaDB/MySQL), or Redis when REDIS_URL is set; in memory only
// for a store-less runtime (unit tests). If the store fails, an in-memory limiter stands in, so a
// database hiccup neither lifts the limits nor turns requests into errors.
import { hash } from 'node:crypto';
import type SQLite from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  RateLimiterMemory,
  RateLimiterMySQL,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  RateLimiterSQLite,
  type RateLimiterStoreAbstract,
} from 'rate-limiter-flexible';
import { normaliseEmail } from '../accounts/email.ts';
import type { Config, RateLimitRule } from '../config.ts';

export type LimitName = keyof Omit<Config['rateLimits'], 'enabled'>;

type PairedLimit = 'signup' | 'resend' | 'login' | 'contact' | 'forgot';

/** The usual pair of checks: this client (IP), and this address whoever asks for it. */
export function clientAndAddress(
  kind: PairedLimit,
  clientIp: string,
  email: string,
): Array<[LimitName, string]> {
  return [
    [`${kind}PerClient`, clientIp],
    [`${kind}PerAddress`, normaliseEmail(email)],
  ];
}

export type LimitResult =
  | { ok: true }
  | {
      ok: false;
      retryAfterSeconds: number;
      /** The exhausted limit with the longest wait, and a prefix of its key's hash (for logs). */
      limit: LimitName;
      keyHash: string;
    };

/** Where the counters are kept. */
export type LimitStore =
  | { kind: 'memory' }
  | { kind: 'sqlite'; database: SQLite.Database }
  | { kind: 'postgres'; pool: pg.Pool }
  // A mysql2 callback-style pool (the one Kysely's MysqlDialect uses) and its database name.
  | { kind: 'mysql'; pool: unknown; database: string }
  | { kind: 'redis'; client: Redis };

export interface RateLimits {
  /** Counts one hit against every (limit, key) pair; the longest wait wins when any is exceeded. */
  consume(checks: Array<[LimitName, string]>): Promise<LimitResult>;
  /**
   * Gives back the hit a `consume` took, for limits that count only failures: every try takes a
   * hit first (so parallel tries cannot all slip past), and a try that succeeds returns it.
   */
  refund(checks: Array<[LimitName, string]>): Promise<void>;
  /** Starts every counter afresh (tests). */
  reset(): void;
  /** Resolves once the store's table exists; rejects if it cannot be made. */
  ready(): Promise<void>;
  readonly storeKind: LimitStore['kind'];
}

/** One table for every limit; rows hold `<limit>:<generation>:<hash of key>`. */
export const RATE_LIMIT_TABLE = 'mailproof_rate_limits';

type Limiter = RateLimiterMemory | RateLimiterStoreAbstract;

export function createRateLimits(
  config: Config['rateLimits'],
  store: LimitStore = { kind: 'memory' },
): RateLimits {
  const rules = (Object.entries(config) as Array<[string, RateLimitRule | boolean]>).filter(
    (entry): entry is [LimitName, RateLimitRule] => typeof entry[1] !== 'boolean',
  );
  // reset() moves every limit to a new generation of keys instead of deleting rows.
  let generation = 'g0';
  let limiters = new Map<LimitName, Limiter>();
  let pending: Array<Promise<void>> = [];

  const make = () => {
    limiters = new Map();
    pending = [];
    const bases = rules.map(
      ([name, rule]) =>
        [
          name,
          {
            keyPrefix: `${name}:${generation}`,
            points: rule.points,
            duration: rule.durationSeconds,
          },
        ] as const,
    );
    if (store.kind === 'memory') {
      for (const [name, base] of bases) limiters.set(name, new RateLimiterMemory(base));
      return;
    }
    // The shared table is made once, by a first limiter (retried: another instance may be making
    // it at the same moment, and PostgreSQL's CREATE TABLE IF NOT EXISTS can then fail); the
    // limiters in use are told it exists. If it cannot be made, they run anyway and the
    // in-memory insurance limiter stands in until the database answers.
    const first = bases[0];
    const done = (first ? makeTable(store, first[1]) : Promise.resolve()).finally(() => {
      for (const [name, base] of bases)
        limiters.set(
          name,
          storeLimiter(store, base, () => {}, true),
        );
    });
    // Observed here, not only by ready(): a table still being made when the runtime closes
    // (after reset(), say) fails with the closed pool, and that must not be an unhandled error.
    done.catch(() => {});
    pending.push(done);
  };
  make();
  const ready = () => Promise.all(pending).then(() => undefined);
  // A table that could not be made shows up as errors on use (and the insurance limiter).
  ready().catch(() => {});

  return {
    storeKind: store.kind,
    ready,
    async consume(checks) {
      if (!config.enabled) return { ok: true };
      if (pending.length) await ready().catch(() => {});
      let exceeded: Extract<LimitResult, { ok: false }> | null = null;
      for (const [name, key] of checks) {
        const limiter = limiters.get(name);
        if (!limiter) continue;
        const hashed = hashKey(key);
        try {
          await limiter.consume(hashed);
        } catch (rejection) {
          if (!(rejection instanceof RateLimiterRes)) throw rejection;
          const wait = Math.ceil(rejection.msBeforeNext / 1000);
          if (wait > 0 && wait > (exceeded?.retryAfterSeconds ?? 0)) {
            exceeded = {
              ok: false,
              retryAfterSeconds: wait,
              limit: name,
              keyHash: hashed.slice(0, 12),
            };
          }
        }
      }
      return exceeded ?? { ok: true };
    },
    async refund(checks) {
      if (!config.enabled) return;
      if (pending.length) await ready().catch(() => {});
      for (const [name, key] of checks) {
        // A refund that fails only leaves the count one higher: never worth failing the request.
        await limiters
          .get(name)
          ?.reward(hashKey(key), 1)
          .catch(() => {});
      }
    },
    reset() {
      generation = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      make();
    },
  };
}

/** Keys may be addresses; only their hash is stored. */
function hashKey(key: string): string {
  return hash('sha256', key, 'base64url');
}

async function makeTable(
  store: Exclude<LimitStore, { kind: 'memory' }>,
  base: { keyPrefix: string; points: number; duration: number },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        storeLimiter(store, base, (error) => (error ? reject(error) : resolve()), false);
      });
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

function storeLimiter(
  store: Exclude<LimitStore, { kind: 'memory' }>,
  base: { keyPrefix: string; points: number; duration: number },
  created: (error?: unknown) => void,
  tableCreated: boolean,
): RateLimiterStoreAbstract {
  const options = {
    ...base,
    tableName: RATE_LIMIT_TABLE,
    tableCreated,
    clearExpiredByTimeout: true,
    // While the store is unreachable, each process limits on its own rather than not at all.
    insuranceLimiter: new RateLimiterMemory(base),
  };
  switch (store.kind) {
    case 'sqlite':
      return new RateLimiterSQLite(
        { ...options, storeClient: store.database, storeType: 'better-sqlite3' },
        created,
      );
    case 'postgres':
      return new RateLimiterPostgres(
        { ...options, storeClient: store.pool, storeType: 'pool' },
        created,
      );
    case 'mysql':
      return new RateLimiterMySQL(
        { ...options, storeClient: store.pool, storeType: 'pool', dbName: store.database },
        created,
      );
    case 'redis':
      queueMicrotask(() => created());
      return new RateLimiterRedis({
        ...base,
        insuranceLimiter: options.insuranceLimiter,
        storeClient: store.client,
      });
  }
}
