// The JSON API of two-step sign-in (docs/decisions/014). Registered inside the API plugin
// (src/web/api.ts), so it shares its JSON-only parsing and its refusal of cross-site browsers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { WrongPassword } from '../accounts/account.ts';
import type { SessionValidation } from '../accounts/session.ts';
import {
  CODE_REQUIRED,
  type CodeProblem,
  confirmEnrolment,
  disableTwoStep,
  regenerateRecoveryCodes,
  startEnrolment,
  twoStepStatus,
} from '../accounts/two-step.ts';
import { answerChallenge, challengeOwner } from '../accounts/two-step-login.ts';
import type { AppContext } from '../context.ts';
import type { RateLimits } from '../ratelimit/limiter.ts';
import { sendApiError, sendRateLimited } from './errors.ts';
import { getAuth, setSessionCookie } from './session-cookie.ts';
import { countingWrongCodes } from './two-step-guard.ts';

export interface TwoStepApiOptions {
  ctx: AppContext;
  limits: RateLimits;
}

/** What POST /api/login answers, instead of a session, when the account has two-step sign-in on. */
export const twoStepRequiredResponse = z.object({
  status: z.literal('two_step_required'),
  challenge: z.string(),
});

const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).loose(),
});
// The same answer as a password-only POST /api/login.
const meResponse = z.object({ email: z.string(), emailVerified: z.boolean() });
const passwordField = z.string().max(4096);
const codeField = z.string().max(100);
const recoveryCodesResponse = z.array(z.string());

const CHALLENGE_INVALID = 'This login has expired or is already finished. Log in again.';

export const twoStepApiRoutes: FastifyPluginAsyncZod<TwoStepApiOptions> = async (
  app,
  { ctx, limits },
) => {
  async function requireUser(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<Extract<SessionValidation, { user: object }> | null> {
    const auth = await getAuth(ctx, request);
    if (auth.user) return auth;
    sendApiError(reply, 401, 'unauthenticated', 'Log in first.');
    return null;
  }

  /** A refused password or code, in the API's error shape; the body calls the password `password`. */
  function sendRefusal(reply: FastifyReply, problem: WrongPassword | CodeProblem) {
    const field = problem.field === 'code' ? 'code' : 'password';
    return sendApiError(reply, 400, problem.code, problem.message, { field });
  }

  app.post(
    '/login/two-step',
    {
      schema: {
        summary:
          'The second step of a login: the challenge from POST /api/login and a code from the authenticator app or a recovery code; sets the session cookie',
        body: z.object({ challenge: z.string().max(200), code: codeField }),
        response: { 200: meResponse, 400: errorResponse, 401: errorResponse, 429: errorResponse },
      },
    },
    async (request, reply) => {
      const { challenge, code } = request.body;
      const userId = await challengeOwner(ctx, challenge);
      if (!userId) return sendApiError(reply, 401, 'challenge_invalid', CHALLENGE_INVALID);
      if (code.trim() === '') return sendRefusal(reply, CODE_REQUIRED);
      const attempt = await countingWrongCodes(
        limits,
        { userId, alsoCount: [['verifyPerClient', request.ip]] },
        () => answerChallenge(ctx, challenge, code),
        (result) => result.status === 'invalid' || result.status === 'too_many_attempts',
      );
      if ('refused' in attempt) return sendRateLimited(reply, attempt.refused);
      const { result } = attempt;
      switch (result.status) {
        case 'ok':
          setSessionCookie(ctx, reply, result.sessionToken, result.expiresAt);
          return reply.send({
            email: result.user.email,
            emailVerified: result.user.email_verified_at !== null,
          });
        case 'invalid':
          return sendApiError(reply, 401, result.code, result.message, {
            field: 'code',
            attemptsLeft: result.attemptsLeft,
          });
        case 'too_many_attempts':
          return sendApiError(
            reply,
            401,
            'too_many_attempts',
            'Too many wrong codes. Log in again with your password.',
          );
        case 'challenge_invalid':
          return sendApiError(reply, 401, 'challenge_invalid', CHALLENGE_INVALID);
      }
    },
  );

  app.get(
    '/two-step',
    {
      schema: {
        summary:
          'Whether two-step sign-in is on for this account, and how many recovery codes are left',
        response: {
          200: z.object({ enabled: z.boolean(), recoveryCodesLeft: z.number() }),
          401: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      return reply.send(await twoStepStatus(ctx.db.kysely, auth.user.id));
    },
  );

  app.post(
    '/two-step/setup',
    {
      schema: {
        summary:
          'Start setting up two-step sign-in: a new secret for the authenticator app, kept for this session for 30 minutes until POST /api/two-step/enable confirms it',
        response: {
          200: z.object({ secret: z.string(), uri: z.string(), expiresAt: z.string() }),
          401: errorResponse,
          409: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const started = await startEnrolment(ctx, auth.user, auth.session.idHash);
      if (started.status === 'already_enabled') {
        return sendApiError(reply, 409, 'already_enabled', 'Two-step sign-in is already on.');
      }
      const { secret, uri, expiresAt } = started.enrolment;
      return reply.send({ secret, uri, expiresAt: new Date(expiresAt).toISOString() });
    },
  );

  app.post(
    '/two-step/enable',
    {
      schema: {
        summary:
          'Turn two-step sign-in on with the password and a code from the app; answers the ten recovery codes, once, and a new session cookie',
        body: z.object({ password: passwordField, code: codeField }),
        response: {
          200: z.object({ status: z.literal('enabled'), recoveryCodes: recoveryCodesResponse }),
          400: errorResponse,
          401: errorResponse,
          409: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const limited = await limits.consume([['accountPerUser', auth.user.id]]);
      if (!limited.ok) return sendRateLimited(reply, limited);
      const result = await confirmEnrolment(ctx, auth.user, auth.session.idHash, {
        ...request.body,
        requestId: request.id,
      });
      switch (result.status) {
        case 'enabled':
          setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
          return reply.send({ status: 'enabled', recoveryCodes: result.recoveryCodes });
        case 'no_enrolment':
          return sendApiError(
            reply,
            409,
            'setup_required',
            'Start the setup first (POST /api/two-step/setup); its secret lasts 30 minutes.',
          );
        case 'already_enabled':
          return sendApiError(reply, 409, 'already_enabled', 'Two-step sign-in is already on.');
        case 'invalid':
          return sendRefusal(reply, result);
      }
    },
  );

  const passwordAndCode = z.object({ password: passwordField, code: codeField });

  app.post(
    '/two-step/disable',
    {
      schema: {
        summary:
          'Turn two-step sign-in off with the password and a code (or a recovery code); answers a new session cookie. Refused (400 two_step_required_by_site) when the site requires two-step sign-in',
        body: passwordAndCode,
        response: {
          200: z.object({ status: z.literal('disabled') }),
          400: errorResponse,
          401: errorResponse,
          409: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const { user, session } = auth;
      const attempt = await countingWrongCodes(
        limits,
        {
          userId: request.body.code.trim() ? user.id : null,
          alsoCount: [['accountPerUser', user.id]],
        },
        () => disableTwoStep(ctx, user, session.idHash, { ...request.body, requestId: request.id }),
        (result) => result.status === 'invalid' && result.field === 'code',
      );
      if ('refused' in attempt) return sendRateLimited(reply, attempt.refused);
      const { result } = attempt;
      switch (result.status) {
        case 'disabled':
          setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
          return reply.send({ status: 'disabled' });
        case 'not_enabled':
          return sendApiError(reply, 409, 'not_enabled', 'Two-step sign-in is not on.');
        case 'required_by_site':
          return sendApiError(reply, 400, 'two_step_required_by_site', result.message);
        case 'invalid':
          return sendRefusal(reply, result);
      }
    },
  );

  app.post(
    '/two-step/recovery-codes',
    {
      schema: {
        summary:
          'Replace every recovery code with ten new ones (password and a code required); answers them once',
        body: passwordAndCode,
        response: {
          200: z.object({ recoveryCodes: recoveryCodesResponse }),
          400: errorResponse,
          401: errorResponse,
          409: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const { user, session } = auth;
      const attempt = await countingWrongCodes(
        limits,
        {
          userId: request.body.code.trim() ? user.id : null,
          alsoCount: [['accountPerUser', user.id]],
        },
        () => regenerateRecoveryCodes(ctx, user, session.idHash, request.body),
        (result) => result.status === 'invalid' && result.field === 'code',
      );
      if ('refused' in attempt) return sendRateLimited(reply, attempt.refused);
      const { result } = attempt;
      switch (result.status) {
        case 'regenerated':
          setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
          return reply.send({ recoveryCodes: result.recoveryCodes });
        case 'not_enabled':
          return sendApiError(reply, 409, 'not_enabled', 'Two-step sign-in is not on.');
        case 'invalid':
          return sendRefusal(reply, result);
      }
    },
  );
};
