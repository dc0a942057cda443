// Second-step codes under the shared limits (src/ratelimit/limiter.ts). A code is a guess like
// any other, so each try takes a hit of `twoStepPerUser` for the account before the code is looked
// at (parallel guesses cannot all slip past), and a try that was not a wrong code gives it back:
// only wrong codes count against the account, wherever they are typed (login, reset, account).
import type { LimitName, LimitResult, RateLimits } from '../ratelimit/limiter.ts';

export type Refusal = Extract<LimitResult, { ok: false }>;

/**
 * REQUIRE_TWO_STEP (decision 014): what a session of an account without two-step sign-in is told
 * by every page and API route but setting it up, `GET /api/me` and logging out.
 */
export const TWO_STEP_SETUP_REQUIRED =
  'This site requires two-step sign-in. Set it up to continue: you will need an authenticator app.';
export const TWO_STEP_SETUP_REQUIRED_API =
  'This site requires two-step sign-in. Set it up first: POST /api/two-step/setup, then POST /api/two-step/enable.';

export async function countingWrongCodes<T>(
  limits: RateLimits,
  options: {
    /** The account whose code is tried; null when no code is tried (nothing counts). */
    userId: string | null;
    /** Limits that count every try, right or wrong (the client's code entries, say). */
    alsoCount?: Array<[LimitName, string]>;
  },
  attempt: () => Promise<T>,
  wrongCode: (result: T) => boolean,
): Promise<{ refused: Refusal } | { result: T }> {
  const perAccount: Array<[LimitName, string]> = options.userId
    ? [['twoStepPerUser', options.userId]]
    : [];
  const checks = [...(options.alsoCount ?? []), ...perAccount];
  if (checks.length > 0) {
    const limited = await limits.consume(checks);
    if (!limited.ok) return { refused: limited };
  }
  const result = await attempt();
  if (perAccount.length > 0 && !wrongCode(result)) await limits.refund(perAccount);
  return { result };
}
