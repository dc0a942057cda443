// Server-rendered pages. They call the same domain functions as the JSON API.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { VNode } from 'preact';
import {
  changePassword,
  deleteAccount,
  endSessions,
  validatePasswordChange,
} from '../accounts/account.ts';
import { isValidEmail, normaliseEmail } from '../accounts/email.ts';
import {
  cancelEmailChange,
  checkEmailChangeLink,
  confirmEmailChangeCode,
  confirmEmailChangeToken,
  type EmailChangeResult,
  pendingEmailChange,
  requestEmailChange,
  validateEmailChange,
} from '../accounts/email-change.ts';
import {
  confirmSignupCode,
  confirmSignupToken,
  resendSignupVerification,
  targetOfToken,
} from '../accounts/email-verification.ts';
import { logIn } from '../accounts/login.ts';
import {
  checkResetLink,
  requestPasswordReset,
  resetLinkTwoStepUser,
  resetPassword,
} from '../accounts/password-reset.ts';
import {
  invalidateSession,
  listSessions,
  publicSessionId,
  type SessionValidation,
} from '../accounts/session.ts';
import { signUp, signupFieldErrors } from '../accounts/signup.ts';
import { twoStepSetupRequired, twoStepStatus } from '../accounts/two-step.ts';
import {
  CONTACT_LIMITS,
  confirmContactCode,
  confirmContactToken,
  findContactByToken,
  listAcceptedContacts,
  resendContactForToken,
  submitContact,
  validateContact,
} from '../contact/contact.ts';
import type { AppContext } from '../context.ts';
import { clientAndAddress, type LimitName, type RateLimits } from '../ratelimit/limiter.ts';
import { findByToken, looksLikeToken } from '../tokens/tokens.ts';
import { adminAuthorized, requestAdminAuth } from './admin-auth.ts';
import { acceptForms } from './body-checks.ts';
import { logRateLimited } from './errors.ts';
import { clearSessionCookie, getAuth, sessionToken, setSessionCookie } from './session-cookie.ts';
import { setChallengeCookie } from './two-step-cookie.ts';
import { countingWrongCodes, TWO_STEP_SETUP_REQUIRED } from './two-step-guard.ts';
import {
  type AccountErrors,
  AccountPage,
  EmailChangeConfirmPage,
  EmailChangeOutcomePage,
  ForgotPage,
  ForgotSentPage,
  ResetOutcomePage,
  ResetPage,
} from './views/account.tsx';
import {
  AdminContactPage,
  ContactCodePage,
  ContactConfirmPage,
  ContactOutcomePage,
  ContactPage,
  ContactPendingPage,
} from './views/contact.tsx';
import { type Flash, type PageContext, renderPage } from './views/layout.tsx';
import {
  CheckInboxPage,
  CodePage,
  ConfirmPage,
  ErrorPage,
  HomePage,
  LoginPage,
  OutcomePage,
  RateLimitedPage,
  ResendPage,
  ResendSentPage,
  SignupPage,
} from './views/pages.tsx';

export interface PageOptions {
  ctx: AppContext;
  limits: RateLimits;
}

type Form = Record<string, string | string[] | undefined>;

/** Like the session's: `__Host-` (so Secure, this host, every path) in production (ASVS 3.3.1). */
function flashCookie(ctx: AppContext) {
  const secure = ctx.config.isProduction;
  return {
    name: secure ? '__Host-mp_flash' : 'mp_flash',
    options: { path: '/', httpOnly: true, sameSite: 'lax' as const, secure },
  };
}

function field(body: unknown, name: string): string {
  const value = (body as Form | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

/** A field that may repeat (checkboxes): every string value, at most `max` of them. */
function fields(body: unknown, name: string, max = 100): string[] {
  const value = (body as Form | undefined)?.[name];
  const values = Array.isArray(value) ? value : [value];
  return values.filter((v): v is string => typeof v === 'string').slice(0, max);
}

export async function pageContext(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<PageContext> {
  const { user } = await getAuth(ctx, request);
  return {
    appName: ctx.branding.appName,
    csrfToken: reply.generateCsrf(),
    user: user ? { email: user.email, emailVerified: user.email_verified_at !== null } : null,
    flash: takeFlash(ctx, request, reply),
    inboxEnabled: ctx.config.inbox.enabled,
    contactEnabled: ctx.config.contact.to !== null,
  };
}

function takeFlash(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): Flash | null {
  const cookie = flashCookie(ctx);
  const raw = request.cookies[cookie.name];
  if (!raw) return null;
  reply.clearCookie(cookie.name, cookie.options);
  const unsigned = request.unsignCookie(raw);
  if (!unsigned.valid || !unsigned.value) return null;
  try {
    return JSON.parse(unsigned.value) as Flash;
  } catch {
    return null;
  }
}

export function setFlash(ctx: AppContext, reply: FastifyReply, flash: Flash) {
  const cookie = flashCookie(ctx);
  reply.setCookie(cookie.name, JSON.stringify(flash), { ...cookie.options, signed: true });
}

/** The form that takes an address and its 8-digit code, shared by every flow that sends one. */
function codeFormErrors(email: string, code: string): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!isValidEmail(email)) errors.email = 'Enter the email address the code was sent to.';
  if (!/^\d{4}[\s-]?\d{4}$/.test(code.trim())) errors.code = 'Enter the 8 digits of the code.';
  return errors;
}

/** A confirmation's page status: 400 for an unknown link, 410 for an expired one, else 200. */
function outcomeStatus(status: string): number {
  if (status === 'invalid') return 400;
  return status === 'expired' ? 410 : 200;
}

export function sendPage(reply: FastifyReply, page: VNode, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(renderPage(page));
}

/**
 * The largest form body a page takes. The longest form is the contact form's: a 5000-character
 * message in a script of three-byte characters (Chinese, Japanese) is nine bytes a character once
 * percent-encoded, 45 KB, and its 100-character name another 0.9 KB. The JSON API takes as much.
 */
export const FORM_BODY_LIMIT = 64 * 1024;

export const pageRoutes: FastifyPluginAsync<PageOptions> = async (app, { ctx, limits }) => {
  await acceptForms(app, FORM_BODY_LIMIT);
  const csrf = { preHandler: app.csrfProtection };

  async function limited(
    request: FastifyRequest,
    reply: FastifyReply,
    checks: Array<[LimitName, string]>,
    back: string,
  ): Promise<boolean> {
    const result = await limits.consume(checks);
    if (result.ok) return false;
    logRateLimited(request.log, result);
    reply.header('Retry-After', String(result.retryAfterSeconds));
    sendPage(
      reply,
      <RateLimitedPage
        ctx={await pageContext(ctx, request, reply)}
        retryAfterSeconds={result.retryAfterSeconds}
        back={back}
      />,
      429,
    );
    return true;
  }

  app.get('/', async (request, reply) =>
    sendPage(reply, <HomePage ctx={await pageContext(ctx, request, reply)} />),
  );

  app.get('/signup', async (request, reply) =>
    sendPage(
      reply,
      <SignupPage
        ctx={await pageContext(ctx, request, reply)}
        minLength={ctx.config.passwordMinLength}
      />,
    ),
  );

  app.post('/signup', csrf, async (request, reply) => {
    const email = field(request.body, 'email');
    const password = field(request.body, 'password');
    // Every field's problem at once; only a valid form counts against the limits and signs up.
    const errors = signupFieldErrors(ctx, { email, password });
    const invalid = Object.keys(errors).length > 0;
    if (
      !invalid &&
      (await limited(request, reply, clientAndAddress('signup', request.ip, email), '/signup'))
    ) {
      return reply;
    }
    const result = invalid ? null : await signUp(ctx, { email, password, requestId: request.id });
    const page = await pageContext(ctx, request, reply);
    if (!result || result.status === 'invalid') {
      return sendPage(
        reply,
        <SignupPage
          ctx={page}
          email={email}
          errors={result ? { [result.field]: result.message } : errors}
          minLength={ctx.config.passwordMinLength}
        />,
        400,
      );
    }
    return sendPage(reply, <CheckInboxPage ctx={page} email={email.trim()} />);
  });

  app.get('/login', async (request, reply) =>
    sendPage(reply, <LoginPage ctx={await pageContext(ctx, request, reply)} />),
  );

  app.post('/login', csrf, async (request, reply) => {
    const email = field(request.body, 'email');
    const password = field(request.body, 'password');
    if (await limited(request, reply, clientAndAddress('login', request.ip, email), '/login')) {
      return reply;
    }
    const result = await logIn(ctx, { email, password });
    if (result.status === 'two_step_required') {
      // No session yet: the code page finishes the login (src/web/two-step-routes.tsx).
      setChallengeCookie(ctx, reply, result.challenge, result.expiresAt);
      return reply.redirect('/login/two-step', 303);
    }
    if (result.status !== 'ok') {
      const message =
        result.status === 'email_not_verified'
          ? 'Confirm your email address before logging in. Check your inbox for the link or code.'
          : 'Wrong email address or password.';
      return sendPage(
        reply,
        <LoginPage ctx={await pageContext(ctx, request, reply)} email={email} error={message} />,
        result.status === 'email_not_verified' ? 403 : 401,
      );
    }
    // A fresh session id at every login: a planted cookie is never promoted.
    const previous = sessionToken(ctx, request);
    if (previous) await invalidateSession(ctx, previous);
    setSessionCookie(ctx, reply, result.sessionToken, result.expiresAt);
    if (await twoStepSetupRequired(ctx, result.user.id)) return toTwoStepSetup(reply);
    setFlash(ctx, reply, { kind: 'success', message: 'You are logged in.' });
    return reply.redirect('/account', 303);
  });

  app.post('/logout', csrf, async (request, reply) => {
    const token = sessionToken(ctx, request);
    if (token) await invalidateSession(ctx, token);
    clearSessionCookie(ctx, reply);
    setFlash(ctx, reply, { kind: 'info', message: 'You are logged out.' });
    return reply.redirect('/', 303);
  });

  // The account page (SPEC §2, docs/decisions/012). Its forms all post back to /account and say
  // what they do in an `intent` field; each asks for the current password again.
  type Auth = Extract<SessionValidation, { user: object }>;

  async function renderAccount(
    request: FastifyRequest,
    reply: FastifyReply,
    auth: Auth,
    extras: { errors?: AccountErrors; values?: { newEmail?: string } } = {},
    status = 200,
  ): Promise<FastifyReply> {
    const [pending, sessions, twoStep] = await Promise.all([
      pendingEmailChange(ctx, auth.user.id),
      listSessions(ctx, auth.user.id, auth.session.idHash),
      twoStepStatus(ctx.db.kysely, auth.user.id),
    ]);
    return sendPage(
      reply,
      <AccountPage
        ctx={await pageContext(ctx, request, reply)}
        email={auth.user.email}
        verified={auth.user.email_verified_at !== null}
        pending={pending}
        sessions={sessions}
        twoStep={twoStep}
        minLength={ctx.config.passwordMinLength}
        errors={extras.errors}
        values={extras.values}
      />,
      status,
    );
  }

  async function requireLogin(request: FastifyRequest, reply: FastifyReply): Promise<Auth | null> {
    const auth = await getAuth(ctx, request);
    if (auth.user) {
      // REQUIRE_TWO_STEP: a session without two-step sign-in may only set it up.
      if (!(await twoStepSetupRequired(ctx, auth.user.id))) return auth;
      toTwoStepSetup(reply);
      return null;
    }
    setFlash(ctx, reply, { kind: 'info', message: 'Log in to see your account.' });
    reply.redirect('/login', 303);
    return null;
  }

  /** REQUIRE_TWO_STEP: every page but the setup's (and logging out) sends such a session there. */
  function toTwoStepSetup(reply: FastifyReply): FastifyReply {
    setFlash(ctx, reply, { kind: 'info', message: TWO_STEP_SETUP_REQUIRED });
    return reply.redirect('/account/two-step', 303);
  }

  function done(reply: FastifyReply, flash: Flash, to = '/account'): FastifyReply {
    setFlash(ctx, reply, flash);
    return reply.redirect(to, 303);
  }

  app.get('/account', async (request, reply) => {
    const auth = await requireLogin(request, reply);
    return auth ? renderAccount(request, reply, auth) : reply;
  });

  app.post('/account', csrf, async (request, reply) => {
    const auth = await requireLogin(request, reply);
    if (!auth) return reply;
    const { user, session } = auth;
    const body = request.body;
    const perUser: Array<[LimitName, string]> = [['accountPerUser', user.id]];
    const intent = field(body, 'intent');
    switch (intent) {
      case 'change_password': {
        const currentPassword = field(body, 'currentPassword');
        const newPassword = field(body, 'newPassword');
        const invalid = validatePasswordChange(ctx, user, newPassword);
        if (invalid) {
          return renderAccount(
            request,
            reply,
            auth,
            { errors: { 'pw-new': invalid.message } },
            400,
          );
        }
        if (await limited(request, reply, perUser, '/account')) return reply;
        const result = await changePassword(ctx, user, session.idHash, {
          currentPassword,
          newPassword,
          requestId: request.id,
        });
        if (result.status === 'invalid') {
          const key = result.field === 'currentPassword' ? 'pw-current' : 'pw-new';
          return renderAccount(request, reply, auth, { errors: { [key]: result.message } }, 400);
        }
        setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
        return done(reply, {
          kind: 'success',
          message: 'Your password has been changed. Your other devices were logged out.',
        });
      }
      case 'change_email': {
        const newEmail = field(body, 'newEmail');
        const values = { newEmail };
        const invalid = validateEmailChange(user, newEmail);
        if (invalid) {
          return renderAccount(
            request,
            reply,
            auth,
            { errors: { 'email-new': invalid.message }, values },
            400,
          );
        }
        const checks: Array<[LimitName, string]> = [
          ...perUser,
          ['emailChangePerAddress', normaliseEmail(newEmail)],
        ];
        if (await limited(request, reply, checks, '/account')) return reply;
        const result = await requestEmailChange(ctx, user, {
          newEmail,
          password: field(body, 'password'),
          currentSessionIdHash: session.idHash,
          requestId: request.id,
        });
        if (result.status === 'invalid') {
          const key = result.field === 'password' ? 'email-password' : 'email-new';
          return renderAccount(
            request,
            reply,
            auth,
            { errors: { [key]: result.message }, values },
            400,
          );
        }
        setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
        return done(reply, {
          kind: 'success',
          message: `We sent a link and a code to ${result.newEmail}. Your address changes once you confirm.`,
        });
      }
      case 'confirm_email_code': {
        const code = field(body, 'code').trim();
        if (!/^\d{4}[\s-]?\d{4}$/.test(code)) {
          const errors = { 'email-code': 'Enter the 8 digits of the code.' };
          return renderAccount(request, reply, auth, { errors }, 400);
        }
        if (await limited(request, reply, [['verifyPerClient', request.ip]], '/account')) {
          return reply;
        }
        const result = await confirmEmailChangeCode(ctx, user.id, code);
        switch (result.status) {
          case 'changed':
          case 'already_changed':
            return done(reply, {
              kind: 'success',
              message: `Your email address is now ${result.email}.`,
            });
          default: {
            const message = {
              taken:
                'Another account started using this address before you confirmed, so your address stays as it is.',
              expired: 'This code has expired. Ask for the change again to get a new one.',
              too_many_attempts:
                'Too many wrong codes. Use the link in the message, or ask for the change again.',
              code_invalid: 'That code is not right. Check it and try again.',
              invalid: 'That code is not right. Check it and try again.',
            }[result.status];
            return renderAccount(request, reply, auth, { errors: { 'email-code': message } }, 400);
          }
        }
      }
      case 'cancel_email_change':
        await cancelEmailChange(ctx, user.id);
        return done(reply, { kind: 'info', message: 'The change of address was cancelled.' });
      case 'end_sessions':
      case 'logout_everywhere': {
        const selected = fields(body, 'session').filter((id) => /^[0-9a-f]{16}$/.test(id));
        if (intent === 'end_sessions' && selected.length === 0) {
          const errors = { 'sessions-select': 'Choose at least one session to log out.' };
          return renderAccount(request, reply, auth, { errors }, 400);
        }
        if (await limited(request, reply, perUser, '/account')) return reply;
        const result = await endSessions(
          ctx,
          user,
          { idHash: session.idHash, publicId: publicSessionId(session.idHash) },
          {
            password: field(body, 'password'),
            which: intent === 'end_sessions' ? selected : 'all',
          },
        );
        if (result.status === 'invalid') {
          const errors = { 'sessions-password': result.message };
          return renderAccount(request, reply, auth, { errors }, 400);
        }
        if (result.includesCurrent) {
          clearSessionCookie(ctx, reply);
          const message =
            intent === 'logout_everywhere'
              ? 'You are logged out everywhere.'
              : 'You are logged out of the sessions you chose, this one included.';
          return done(reply, { kind: 'info', message }, '/login');
        }
        if (result.session) {
          setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
        }
        return done(reply, {
          kind: 'success',
          message:
            result.count === 1
              ? 'One session was logged out.'
              : `${result.count} sessions were logged out.`,
        });
      }
      case 'delete_account': {
        if (await limited(request, reply, perUser, '/account')) return reply;
        const result = await deleteAccount(ctx, user, { password: field(body, 'password') });
        if (result.status === 'invalid') {
          const errors = { 'delete-password': result.message };
          return renderAccount(request, reply, auth, { errors }, 400);
        }
        clearSessionCookie(ctx, reply);
        return done(reply, { kind: 'info', message: 'Your account has been deleted.' }, '/');
      }
      default:
        return sendPage(
          reply,
          <ErrorPage
            ctx={await pageContext(ctx, request, reply)}
            title="Request not accepted"
            message="This form is not one the account page knows. Go back, reload the page and try again."
          />,
          400,
        );
    }
  });

  // A confirmation's page status for an email change.
  function emailChangeStatus(status: EmailChangeResult['status']): number {
    if (status === 'invalid') return 400;
    if (status === 'expired') return 410;
    return status === 'taken' ? 409 : 200;
  }

  // The link to the new address: GET shows a button, only the POST changes the address.
  app.get<{ Params: { token: string } }>(
    '/account/email/confirm/:token',
    async (request, reply) => {
      const page = await pageContext(ctx, request, reply);
      const state = await checkEmailChangeLink(ctx, request.params.token);
      if (state.status === 'valid') {
        return sendPage(
          reply,
          <EmailChangeConfirmPage
            ctx={page}
            action={`/account/email/confirm/${request.params.token}`}
            newEmail={state.newEmail}
          />,
        );
      }
      return sendPage(
        reply,
        <EmailChangeOutcomePage
          ctx={page}
          outcome={state.status}
          email={'email' in state ? state.email : undefined}
        />,
        emailChangeStatus(state.status),
      );
    },
  );

  app.post<{ Params: { token: string } }>(
    '/account/email/confirm/:token',
    csrf,
    async (request, reply) => {
      if (await limited(request, reply, [['resetPerClient', request.ip]], '/account')) {
        return reply;
      }
      const result = await confirmEmailChangeToken(ctx, request.params.token);
      const page = await pageContext(ctx, request, reply);
      return sendPage(
        reply,
        <EmailChangeOutcomePage
          ctx={page}
          outcome={result.status}
          email={'email' in result ? result.email : undefined}
        />,
        emailChangeStatus(result.status),
      );
    },
  );

  // Password reset (SPEC §2): asking answers the same whether or not the address has an account.
  app.get('/forgot', async (request, reply) =>
    sendPage(reply, <ForgotPage ctx={await pageContext(ctx, request, reply)} />),
  );

  app.post('/forgot', csrf, async (request, reply) => {
    const email = field(request.body, 'email');
    if (!isValidEmail(email)) {
      return sendPage(
        reply,
        <ForgotPage
          ctx={await pageContext(ctx, request, reply)}
          email={email}
          error="Enter a valid email address, such as name@example.com."
        />,
        400,
      );
    }
    if (await limited(request, reply, clientAndAddress('forgot', request.ip, email), '/forgot')) {
      return reply;
    }
    await requestPasswordReset(ctx, email, request.id);
    return sendPage(
      reply,
      <ForgotSentPage
        ctx={await pageContext(ctx, request, reply)}
        linkSeconds={ctx.config.ttl.resetLinkSeconds}
      />,
    );
  });

  // Opening the emailed link changes nothing: it shows the form for the new password.
  app.get<{ Params: { token: string } }>('/reset/:token', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const status = await checkResetLink(ctx, request.params.token);
    if (status === 'valid') {
      return sendPage(
        reply,
        <ResetPage
          ctx={page}
          action={`/reset/${request.params.token}`}
          minLength={ctx.config.passwordMinLength}
          twoStep={(await resetLinkTwoStepUser(ctx, request.params.token)) !== null}
        />,
      );
    }
    return sendPage(
      reply,
      <ResetOutcomePage ctx={page} outcome={status} />,
      status === 'invalid' ? 400 : 410,
    );
  });

  app.post<{ Params: { token: string } }>('/reset/:token', csrf, async (request, reply) => {
    if (await limited(request, reply, [['resetPerClient', request.ip]], '/forgot')) return reply;
    // Who this browser was logged in as, before the reset ends that account's sessions.
    const before = await getAuth(ctx, request);
    const { token } = request.params;
    const code = field(request.body, 'code');
    // With two-step sign-in on, the code is asked too and counted like any other (ASVS 6.4.3).
    const twoStepUser = await resetLinkTwoStepUser(ctx, token);
    const attempt = await countingWrongCodes(
      limits,
      { userId: twoStepUser && code.trim() ? twoStepUser : null },
      () =>
        resetPassword(ctx, {
          token,
          password: field(request.body, 'password'),
          code,
          requestId: request.id,
        }),
      (outcome) => outcome.status === 'two_step_refused',
    );
    if ('refused' in attempt) {
      const { refused } = attempt;
      logRateLimited(request.log, refused);
      reply.header('Retry-After', String(refused.retryAfterSeconds));
      const wait = (
        <RateLimitedPage
          ctx={await pageContext(ctx, request, reply)}
          retryAfterSeconds={refused.retryAfterSeconds}
          back={`/reset/${token}`}
        />
      );
      return sendPage(reply, wait, 429);
    }
    const { result } = attempt;
    const page = await pageContext(ctx, request, reply);
    const form = (errors: { password?: string; code?: string }) => (
      <ResetPage
        ctx={page}
        action={`/reset/${token}`}
        minLength={ctx.config.passwordMinLength}
        twoStep={twoStepUser !== null || errors.code !== undefined}
        error={errors.password}
        codeError={errors.code}
      />
    );
    switch (result.status) {
      case 'weak_password':
        return sendPage(reply, form({ password: result.message }), 400);
      case 'two_step_refused':
        return sendPage(reply, form({ code: result.message }), 400);
      case 'reset': {
        const left = result.recoveryCodesLeft;
        // Every session of the account has ended, this browser's too if it had one.
        if (before.user?.id !== result.userId) {
          return sendPage(
            reply,
            <ResetOutcomePage ctx={page} outcome="reset" recoveryCodesLeft={left} />,
          );
        }
        clearSessionCookie(ctx, reply);
        return sendPage(
          reply,
          <ResetOutcomePage
            ctx={{ ...page, user: null }}
            outcome="reset"
            recoveryCodesLeft={left}
          />,
        );
      }
      default:
        return sendPage(
          reply,
          <ResetOutcomePage ctx={page} outcome={result.status} />,
          result.status === 'invalid' ? 400 : 410,
        );
    }
  });

  // Opening the emailed link changes nothing: it only shows a page whose button POSTs.
  app.get<{ Params: { token: string } }>('/verify/:token', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const found = await findByToken(ctx.db.kysely, 'signup', request.params.token, ctx.clock.now());
    switch (found.status) {
      case 'valid':
        return sendPage(
          reply,
          <ConfirmPage ctx={page} action={`/verify/${request.params.token}`} />,
        );
      case 'expired':
        return sendPage(
          reply,
          <OutcomePage ctx={page} outcome="expired" token={request.params.token} />,
          410,
        );
      case 'used':
        return sendPage(reply, <OutcomePage ctx={page} outcome="already_verified" />);
      default:
        return sendPage(reply, <OutcomePage ctx={page} outcome="invalid" />, 400);
    }
  });

  app.post<{ Params: { token: string } }>('/verify/:token', csrf, async (request, reply) => {
    const result = await confirmSignupToken(ctx, request.params.token);
    const page = await pageContext(ctx, request, reply);
    const status = outcomeStatus(result.status);
    return sendPage(
      reply,
      <OutcomePage ctx={page} outcome={result.status} token={request.params.token} />,
      status,
    );
  });

  app.get<{ Querystring: { email?: string } }>('/verify', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const email = typeof request.query.email === 'string' ? request.query.email : page.user?.email;
    return sendPage(reply, <CodePage ctx={page} email={email} />);
  });

  app.post('/verify', csrf, async (request, reply) => {
    const email = field(request.body, 'email');
    const code = field(request.body, 'code');
    const errors = codeFormErrors(email, code);
    if (Object.keys(errors).length > 0) {
      return sendPage(
        reply,
        <CodePage ctx={await pageContext(ctx, request, reply)} email={email} errors={errors} />,
        400,
      );
    }
    if (await limited(request, reply, [['verifyPerClient', request.ip]], '/verify')) return reply;
    const result = await confirmSignupCode(ctx, email, code.trim());
    const page = await pageContext(ctx, request, reply);
    switch (result.status) {
      case 'verified':
      case 'already_verified':
        return sendPage(reply, <OutcomePage ctx={page} outcome={result.status} />);
      case 'expired':
        return sendPage(
          reply,
          <CodePage
            ctx={page}
            email={email}
            errors={{ code: 'This code has expired. Send a new one below.' }}
          />,
          410,
        );
      case 'too_many_attempts':
        return sendPage(
          reply,
          <CodePage
            ctx={page}
            email={email}
            errors={{
              code: 'Too many wrong codes. Use the link in the message, or send a new code.',
            }}
          />,
          400,
        );
      default:
        return sendPage(
          reply,
          <CodePage
            ctx={page}
            email={email}
            errors={{ code: 'That code is not right. Check it and try again.' }}
          />,
          400,
        );
    }
  });

  app.get<{ Querystring: { email?: string } }>('/verify/resend', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const email = typeof request.query.email === 'string' ? request.query.email : page.user?.email;
    return sendPage(reply, <ResendPage ctx={page} email={email} />);
  });

  app.post('/verify/resend', csrf, async (request, reply) => {
    const token = field(request.body, 'token');
    // From an expired link's page: the address comes from the link and is never shown.
    const email = token ? ((await targetOfToken(ctx, token)) ?? '') : field(request.body, 'email');
    if (!isValidEmail(email)) {
      if (token) {
        const page = await pageContext(ctx, request, reply);
        return sendPage(reply, <OutcomePage ctx={page} outcome="invalid" />, 400);
      }
      return sendPage(
        reply,
        <ResendPage
          ctx={await pageContext(ctx, request, reply)}
          email={email}
          error="Enter a valid email address, such as name@example.com."
        />,
        400,
      );
    }
    const checks: Array<[LimitName, string]> = clientAndAddress('resend', request.ip, email);
    if (await limited(request, reply, checks, '/verify/resend')) return reply;
    await resendSignupVerification(ctx, email, request.id);
    return sendPage(reply, <ResendSentPage ctx={await pageContext(ctx, request, reply)} />);
  });

  // The verified contact form (SPEC §3).
  const contactLimits = { name: CONTACT_LIMITS.name, message: CONTACT_LIMITS.message };

  async function contactDisabled(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    if (ctx.config.contact.to) return false;
    sendPage(
      reply,
      <ErrorPage
        ctx={await pageContext(ctx, request, reply)}
        title="Contact form not available"
        message="This site has no contact address configured."
      />,
      404,
    );
    return true;
  }

  app.get('/contact', async (request, reply) => {
    if (await contactDisabled(request, reply)) return reply;
    return sendPage(
      reply,
      <ContactPage ctx={await pageContext(ctx, request, reply)} limits={contactLimits} />,
    );
  });

  app.post('/contact', csrf, async (request, reply) => {
    if (await contactDisabled(request, reply)) return reply;
    const input = {
      name: field(request.body, 'name'),
      email: field(request.body, 'email'),
      message: field(request.body, 'message'),
      website: field(request.body, 'website'),
    };
    const checks = clientAndAddress('contact', request.ip, input.email);
    const valid = Object.keys(validateContact(input)).length === 0;
    if (valid && (await limited(request, reply, checks, '/contact'))) return reply;
    const result = await submitContact(ctx, input, request.id);
    const page = await pageContext(ctx, request, reply);
    if (result.status === 'invalid') {
      return sendPage(
        reply,
        <ContactPage ctx={page} values={input} errors={result.errors} limits={contactLimits} />,
        400,
      );
    }
    return sendPage(reply, <ContactPendingPage ctx={page} email={input.email.trim()} />);
  });

  // Opening the emailed link shows the message and a button; only the POST accepts it.
  app.get<{ Params: { token: string } }>('/contact/confirm/:token', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const found = await findContactByToken(ctx, request.params.token);
    switch (found.status) {
      case 'valid':
        return sendPage(
          reply,
          <ContactConfirmPage
            ctx={page}
            contact={found.contact}
            action={`/contact/confirm/${request.params.token}`}
          />,
        );
      case 'expired':
        return sendPage(
          reply,
          <ContactOutcomePage ctx={page} outcome="expired" token={request.params.token} />,
          410,
        );
      case 'used':
        return sendPage(reply, <ContactOutcomePage ctx={page} outcome="already_accepted" />);
      default:
        return sendPage(reply, <ContactOutcomePage ctx={page} outcome="invalid" />, 400);
    }
  });

  app.post<{ Params: { token: string } }>(
    '/contact/confirm/:token',
    csrf,
    async (request, reply) => {
      const result = await confirmContactToken(ctx, request.params.token);
      const page = await pageContext(ctx, request, reply);
      const status = outcomeStatus(result.status);
      return sendPage(
        reply,
        <ContactOutcomePage ctx={page} outcome={result.status} token={request.params.token} />,
        status,
      );
    },
  );

  app.get<{ Querystring: { email?: string } }>('/contact/confirm', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    const email = typeof request.query.email === 'string' ? request.query.email : undefined;
    return sendPage(reply, <ContactCodePage ctx={page} email={email} />);
  });

  app.post('/contact/confirm', csrf, async (request, reply) => {
    const email = field(request.body, 'email');
    const code = field(request.body, 'code');
    const errors = codeFormErrors(email, code);
    if (Object.keys(errors).length > 0) {
      return sendPage(
        reply,
        <ContactCodePage
          ctx={await pageContext(ctx, request, reply)}
          email={email}
          errors={errors}
        />,
        400,
      );
    }
    if (await limited(request, reply, [['verifyPerClient', request.ip]], '/contact/confirm'))
      return reply;
    const result = await confirmContactCode(ctx, email, code.trim());
    const page = await pageContext(ctx, request, reply);
    switch (result.status) {
      case 'accepted':
      case 'already_accepted':
        return sendPage(reply, <ContactOutcomePage ctx={page} outcome={result.status} />);
      case 'expired':
        return sendPage(
          reply,
          <ContactCodePage
            ctx={page}
            email={email}
            errors={{
              code: 'This code has expired. Use the link in the message to get a new one.',
            }}
          />,
          410,
        );
      case 'too_many_attempts':
        return sendPage(
          reply,
          <ContactCodePage
            ctx={page}
            email={email}
            errors={{ code: 'Too many wrong codes. Use the link in the message instead.' }}
          />,
          400,
        );
      default:
        return sendPage(
          reply,
          <ContactCodePage
            ctx={page}
            email={email}
            errors={{ code: 'That code is not right. Check it and try again.' }}
          />,
          400,
        );
    }
  });

  app.post('/contact/resend', csrf, async (request, reply) => {
    const token = field(request.body, 'token');
    if (await limited(request, reply, [['contactPerClient', request.ip]], '/contact')) return reply;
    const address = looksLikeToken(token)
      ? await findContactByToken(ctx, token)
      : { status: 'invalid' as const };
    if (address.status === 'invalid' || address.contact.status !== 'pending') {
      return sendPage(
        reply,
        <ContactOutcomePage ctx={await pageContext(ctx, request, reply)} outcome="invalid" />,
        400,
      );
    }
    if (
      await limited(
        request,
        reply,
        [['contactPerAddress', address.contact.email_normalized]],
        '/contact',
      )
    ) {
      return reply;
    }
    await resendContactForToken(ctx, token, request.id);
    return sendPage(
      reply,
      <ContactOutcomePage ctx={await pageContext(ctx, request, reply)} outcome="resent" />,
    );
  });

  // The site owner's list of accepted messages, behind HTTP basic auth with ADMIN_TOKEN.
  app.get('/admin/contact', async (request, reply) => {
    if (!ctx.config.adminToken) return reply.callNotFound();
    if (!adminAuthorized(ctx.config.adminToken, request.headers.authorization)) {
      return requestAdminAuth(reply);
    }
    const messages = await listAcceptedContacts(ctx.db.kysely, 200);
    return sendPage(
      reply,
      <AdminContactPage ctx={await pageContext(ctx, request, reply)} messages={messages} />,
    );
  });
};
