import { randomBytes, randomInt } from 'node:crypto';

/** One clock for the whole program, injected so tests can move time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function manualClock(start = Date.now()): Clock & { advance(ms: number): void } {
  let current = start;
  return {
    now: () => current,
    advance(ms: number) {
      current += ms;
    },
  };
}

/** One random source, injected so tests can make it predictable. */
export interface Random {
  bytes(size: number): Buffer;
  int(maxExclusive: number): number;
}

// Random bytes are drawn from the CSPRNG a few kilobytes at a time: each draw is a call into
// OpenSSL, and ids, tokens and boundaries want a handful of bytes many times per request (as
// Node's own randomUUID() buffers). Bytes handed out are copied and wiped from the pool.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function pooledRandomBytes(size: number): Buffer {
  if (size > 256) return randomBytes(size);
  if (poolOffset + size > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + size));
  pool.fill(0, poolOffset, poolOffset + size);
  poolOffset += size;
  return out;
}

export const cryptoRandom: Random = {
  bytes: pooledRandomBytes,
  int: (maxExclusive) => randomInt(maxExclusive),
};

export function newId(random: Random): string {
  return random.bytes(16).toString('base64url');
}
