// Pages of two-step sign-in (docs/decisions/014): the second step of a login (/login/two-step)
// and setting it up, turning it off and making new recovery codes (/account/two-step). Forms post
// back to the same path; the account page's forms say what they do in an `intent` field.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { SessionValidation } from '../accounts/session.ts';
import { invalidateSession } from '../accounts/session.ts';
import {
  CODE_REQUIRED,
  confirmEnrolment,
  currentEnrolment,
  type DisableResult,
  disableTwoStep,
  type RegenerateResult,
  regenerateRecoveryCodes,
  startEnrolment,
  twoStepStatus,
} from '../accounts/two-step.ts';
import { answerChallenge, challengeOwner } from '../accounts/two-step-login.ts';
import type { AppContext } from '../context.ts';
import type { RateLimits } from '../ratelimit/limiter.ts';
import { acceptForms } from './body-checks.ts';
import { logRateLimited } from './errors.ts';
import { FORM_BODY_LIMIT, pageContext, sendPage, setFlash } from './pages.tsx';
import { getAuth, sessionToken, setSessionCookie } from './session-cookie.ts';
import { challengeToken, clearChallengeCookie } from './two-step-cookie.ts';
import { countingWrongCodes, type Refusal } from './two-step-guard.ts';
import type { Flash } from './views/layout.tsx';
import { ErrorPage, RateLimitedPage } from './views/pages.tsx';
import {
  RecoveryCodesPage,
  type TwoStepErrors,
  TwoStepIntroPage,
  TwoStepLoginPage,
  TwoStepManagePage,
  TwoStepSetupPage,
} from './views/two-step.tsx';

export interface TwoStepPageOptions {
  ctx: AppContext;
  limits: RateLimits;
}

type Auth = Extract<SessionValidation, { user: object }>;

function field(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

function plural(count: number, one: string, many: string): string {
  return count === 1 ? `1 ${one}` : `${count} ${many}`;
}

export const twoStepPageRoutes: FastifyPluginAsync<TwoStepPageOptions> = async (
  app,
  { ctx, limits },
) => {
  await acceptForms(app, FORM_BODY_LIMIT);
  const csrf = { preHandler: app.csrfProtection };

  async function sendRefused(
    request: FastifyRequest,
    reply: FastifyReply,
    refused: Refusal,
    back: string,
  ): Promise<FastifyReply> {
    logRateLimited(request.log, refused);
    reply.header('Retry-After', String(refused.retryAfterSeconds));
    const page = await pageContext(ctx, request, reply);
    return sendPage(
      reply,
      <RateLimitedPage ctx={page} retryAfterSeconds={refused.retryAfterSeconds} back={back} />,
      429,
    );
  }

  // --- The second step of a login --------------------------------------------------------------

  /** The challenge is gone (expired, used up, answered): back to the password. */
  function backToLogin(reply: FastifyReply, flash: Flash): FastifyReply {
    clearChallengeCookie(ctx, reply);
    setFlash(ctx, reply, flash);
    return reply.redirect('/login', 303);
  }

  const TIMED_OUT: Flash = {
    kind: 'info',
    message: 'Your login timed out before the code was entered. Log in again.',
  };

  app.get<{ Querystring: { recovery?: string } }>('/login/two-step', async (request, reply) => {
    if (!(await challengeOwner(ctx, challengeToken(ctx, request)))) {
      return backToLogin(reply, TIMED_OUT);
    }
    const page = await pageContext(ctx, request, reply);
    return sendPage(
      reply,
      <TwoStepLoginPage ctx={page} recovery={request.query.recovery === '1'} />,
    );
  });

  app.post('/login/two-step', csrf, async (request, reply) => {
    const token = challengeToken(ctx, request);
    const code = field(request.body, 'code');
    const userId = await challengeOwner(ctx, token);
    if (!userId) return backToLogin(reply, TIMED_OUT);
    const recovery = !/^[\d\s]*$/.test(code);
    if (code.trim() === '') {
      const page = await pageContext(ctx, request, reply);
      return sendPage(reply, <TwoStepLoginPage ctx={page} error={CODE_REQUIRED.message} />, 400);
    }
    const attempt = await countingWrongCodes(
      limits,
      { userId, alsoCount: [['verifyPerClient', request.ip]] },
      () => answerChallenge(ctx, token, code),
      (result) => result.status === 'invalid' || result.status === 'too_many_attempts',
    );
    if ('refused' in attempt) {
      return sendRefused(request, reply, attempt.refused, '/login/two-step');
    }
    const { result } = attempt;
    switch (result.status) {
      case 'ok': {
        // As the password login does: a fresh session id, and a planted cookie is never promoted.
        const previous = sessionToken(ctx, request);
        if (previous) await invalidateSession(ctx, previous);
        setSessionCookie(ctx, reply, result.sessionToken, result.expiresAt);
        clearChallengeCookie(ctx, reply);
        const left = result.recoveryCodesLeft;
        setFlash(ctx, reply, {
          kind: left !== undefined && left <= 2 ? 'error' : 'success',
          message:
            left === undefined
              ? 'You are logged in.'
              : `You are logged in with a recovery code. ${plural(left, 'recovery code is', 'recovery codes are')} left, and each works once.${left <= 2 ? ' Make new ones on the two-step sign-in page.' : ''}`,
        });
        return reply.redirect('/account', 303);
      }
      case 'invalid': {
        const page = await pageContext(ctx, request, reply);
        const tries = plural(result.attemptsLeft, 'try', 'tries');
        return sendPage(
          reply,
          <TwoStepLoginPage
            ctx={page}
            recovery={recovery}
            error={`${result.message} ${tries} left.`}
          />,
          401,
        );
      }
      case 'too_many_attempts':
        return backToLogin(reply, {
          kind: 'error',
          message: 'Too many wrong codes. Log in again with your password.',
        });
      case 'challenge_invalid':
        return backToLogin(reply, TIMED_OUT);
    }
  });

  // --- Setting it up and managing it ------------------------------------------------------------

  async function requireLogin(request: FastifyRequest, reply: FastifyReply): Promise<Auth | null> {
    const auth = await getAuth(ctx, request);
    if (auth.user) return auth;
    setFlash(ctx, reply, { kind: 'info', message: 'Log in to see your account.' });
    reply.redirect('/login', 303);
    return null;
  }

  function done(reply: FastifyReply, flash: Flash, to = '/account'): FastifyReply {
    setFlash(ctx, reply, flash);
    return reply.redirect(to, 303);
  }

  /** The page for where this account and session are: on, being set up, or off. */
  async function renderTwoStep(
    request: FastifyRequest,
    reply: FastifyReply,
    auth: Auth,
    errors: TwoStepErrors = {},
    status = 200,
  ): Promise<FastifyReply> {
    const twoStep = await twoStepStatus(ctx.db.kysely, auth.user.id);
    const enrolment = twoStep.enabled
      ? null
      : await currentEnrolment(ctx, auth.user, auth.session.idHash);
    const page = await pageContext(ctx, request, reply);
    if (twoStep.enabled) {
      return sendPage(
        reply,
        <TwoStepManagePage
          ctx={page}
          recoveryCodesLeft={twoStep.recoveryCodesLeft}
          errors={errors}
          required={ctx.config.requireTwoStep}
        />,
        status,
      );
    }
    if (enrolment) {
      return sendPage(
        reply,
        <TwoStepSetupPage ctx={page} enrolment={enrolment} errors={errors} />,
        status,
      );
    }
    return sendPage(
      reply,
      <TwoStepIntroPage ctx={page} required={ctx.config.requireTwoStep} />,
      status,
    );
  }

  app.get('/account/two-step', async (request, reply) => {
    const auth = await requireLogin(request, reply);
    return auth ? renderTwoStep(request, reply, auth) : reply;
  });

  app.post('/account/two-step', csrf, async (request, reply) => {
    const auth = await requireLogin(request, reply);
    if (!auth) return reply;
    const { user, session } = auth;
    const password = field(request.body, 'password');
    const code = field(request.body, 'code');
    switch (field(request.body, 'intent')) {
      case 'start': {
        const started = await startEnrolment(ctx, user, session.idHash);
        if (started.status === 'already_enabled') {
          return done(reply, { kind: 'info', message: 'Two-step sign-in is already on.' });
        }
        // Post, then get: reloading the setup page shows the same secret, not a new one.
        return reply.redirect('/account/two-step', 303);
      }
      case 'confirm': {
        const limited = await limits.consume([['accountPerUser', user.id]]);
        if (!limited.ok) return sendRefused(request, reply, limited, '/account/two-step');
        const result = await confirmEnrolment(ctx, user, session.idHash, {
          password,
          code,
          requestId: request.id,
        });
        switch (result.status) {
          case 'enabled': {
            setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
            const page = await pageContext(ctx, request, reply);
            return sendPage(
              reply,
              <RecoveryCodesPage ctx={page} codes={result.recoveryCodes} reason="enabled" />,
            );
          }
          case 'invalid': {
            const key = result.field === 'code' ? 'setup-code' : 'setup-password';
            return renderTwoStep(request, reply, auth, { [key]: result.message }, 400);
          }
          case 'no_enrolment':
            return done(
              reply,
              {
                kind: 'error',
                message: 'The setup timed out. Start again: you will get a new QR code.',
              },
              '/account/two-step',
            );
          case 'already_enabled':
            return done(reply, { kind: 'info', message: 'Two-step sign-in is already on.' });
        }
        break;
      }
      case 'disable':
      case 'regenerate': {
        const intent = field(request.body, 'intent');
        const prefix = intent === 'disable' ? 'off' : 'new';
        const attempt = await countingWrongCodes(
          limits,
          { userId: code.trim() ? user.id : null, alsoCount: [['accountPerUser', user.id]] },
          (): Promise<DisableResult | RegenerateResult> =>
            intent === 'disable'
              ? disableTwoStep(ctx, user, session.idHash, { password, code, requestId: request.id })
              : regenerateRecoveryCodes(ctx, user, session.idHash, { password, code }),
          (result) => result.status === 'invalid' && result.field === 'code',
        );
        if ('refused' in attempt) {
          return sendRefused(request, reply, attempt.refused, '/account/two-step');
        }
        const { result } = attempt;
        switch (result.status) {
          case 'disabled':
            setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
            return done(reply, {
              kind: 'success',
              message: 'Two-step sign-in is off. We emailed you to say so.',
            });
          case 'regenerated': {
            setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
            const page = await pageContext(ctx, request, reply);
            return sendPage(
              reply,
              <RecoveryCodesPage ctx={page} codes={result.recoveryCodes} reason="regenerated" />,
            );
          }
          case 'not_enabled':
            return done(reply, { kind: 'info', message: 'Two-step sign-in is off.' });
          case 'required_by_site':
            return renderTwoStep(request, reply, auth, { off: result.message }, 400);
          case 'invalid': {
            const key = result.field === 'code' ? `${prefix}-code` : `${prefix}-password`;
            return renderTwoStep(request, reply, auth, { [key]: result.message }, 400);
          }
        }
        break;
      }
    }
    const page = await pageContext(ctx, request, reply);
    return sendPage(
      reply,
      <ErrorPage
        ctx={page}
        title="Request not accepted"
        message="This form is not one this page knows. Go back, reload the page and try again."
      />,
      400,
    );
  });
};
