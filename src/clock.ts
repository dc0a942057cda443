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

export const cryptoRandom: Random = {
  bytes: (size) => randomBytes(size),
  int: (maxExclusive) => randomInt(maxExclusive),
};

export function newId(random: Random): string {
  return random.bytes(16).toString('base64url');
}
