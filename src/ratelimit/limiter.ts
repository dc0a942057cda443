// One mechanism for every limit. In one process the counters live in memory.
import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { normaliseEmail } from '../accounts/email.ts';
import type { Config, RateLimitRule } from '../config.ts';

export type LimitName = keyof Omit<Config['rateLimits'], 'enabled'>;

type PairedLimit = 'signup' | 'resend' | 'login' | 'contact';

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

export type LimitResult = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimits {
  /** Counts one hit against every (limit, key) pair; the longest wait wins when any is exceeded. */
  consume(checks: Array<[LimitName, string]>): Promise<LimitResult>;
  reset(): void;
}

export function createRateLimits(config: Config['rateLimits']): RateLimits {
  const limiters = new Map<LimitName, RateLimiterMemory>();
  const make = () => {
    for (const [name, rule] of Object.entries(config) as Array<[string, RateLimitRule | boolean]>) {
      if (typeof rule === 'boolean') continue;
      limiters.set(
        name as LimitName,
        new RateLimiterMemory({
          keyPrefix: name,
          points: rule.points,
          duration: rule.durationSeconds,
        }),
      );
    }
  };
  make();
  return {
    async consume(checks) {
      if (!config.enabled) return { ok: true };
      let wait = 0;
      for (const [name, key] of checks) {
        const limiter = limiters.get(name);
        if (!limiter) continue;
        try {
          // Keys may be addresses; only their hash is held.
          await limiter.consume(createHash('sha256').update(key).digest('base64url'));
        } catch (rejection) {
          if (!(rejection instanceof RateLimiterRes)) throw rejection;
          wait = Math.max(wait, Math.ceil(rejection.msBeforeNext / 1000));
        }
      }
      return wait > 0 ? { ok: false, retryAfterSeconds: wait } : { ok: true };
    },
    reset() {
      limiters.clear();
      make();
    },
  };
}
