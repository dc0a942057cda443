// The JSON API. Bodies are JSON only: a cross-site form cannot send application/json without a
// CORS preflight, which this server never grants, so these routes need no CSRF token.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  changePassword,
  deleteAccount,
  endSessions,
  validatePasswordChange,
} from '../accounts/account.ts';
import { isValidEmail, normaliseEmail } from '../accounts/email.ts';
import {
  confirmEmailChangeCode,
  confirmEmailChangeToken,
  type EmailChangeCodeResult,
  requestEmailChange,
  validateEmailChange,
} from '../accounts/email-change.ts';
import {
  confirmSignupCode,
  confirmSignupToken,
  resendSignupVerification,
} from '../accounts/email-verification.ts';
import { logIn } from '../accounts/login.ts';
import {
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
import { signUp, validateSignup } from '../accounts/signup.ts';
import { twoStepSetupRequired } from '../accounts/two-step.ts';
import {
  confirmContactCode,
  confirmContactToken,
  submitContact,
  validateContact,
} from '../contact/contact.ts';
import type { AppContext } from '../context.ts';
import { clientAndAddress, type LimitName, type RateLimits } from '../ratelimit/limiter.ts';
import { sendApiError, sendRateLimited } from './errors.ts';
import { clearSessionCookie, getAuth, sessionToken, setSessionCookie } from './session-cookie.ts';
import { twoStepApiRoutes, twoStepRequiredResponse } from './two-step-api.ts';
import { countingWrongCodes, TWO_STEP_SETUP_REQUIRED_API } from './two-step-guard.ts';

export interface ApiOptions {
  ctx: AppContext;
  limits: RateLimits;
}

const emailField = z.string().max(1000);
const passwordField = z.string().max(4096);
/**
 * A password being chosen: the body limit bounds it, and the password rules answer one that is
 * too long with their own code (password_too_long) rather than a schema error.
 */
const newPasswordField = z.string();

/** A confirmation's body: the token from the link, or the address and the code from the message. */
const tokenOrCode = z.union(
  [
    z.object({ token: z.string().max(200) }),
    z.object({ email: emailField, code: z.string().max(20) }),
  ],
  { error: 'send {"token"} from the link, or {"email", "code"} from the message' },
);

const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).loose(),
});

const tokenField = z.string().max(200);

/** Where a browser says a request came from: the app's own origin, or no browser at all. */
function crossSite(request: FastifyRequest, appOrigin: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = request.headers.origin;
  return origin !== undefined && origin !== appOrigin;
}

export const apiRoutes: FastifyPluginAsyncZod<ApiOptions> = async (app, { ctx, limits }) => {
  // JSON only (see docs/decisions/006): a text/plain body, which a cross-site form can send, gets 415.
  app.removeContentTypeParser('text/plain');

  // A browser on another site cannot send JSON without a preflight, which is never granted; a
  // request without a body needs none, so browsers that say where a request came from are
  // also held to this origin (ASVS 3.5.2). Programs that send no Origin are not affected.
  const appOrigin = new URL(ctx.config.baseUrl).origin;
  // Callback style: an async hook costs every API request a promise and a microtask turn.
  app.addHook('onRequest', (request, reply, done) => {
    const unsafe = request.method !== 'GET' && request.method !== 'HEAD';
    if (unsafe && crossSite(request, appOrigin)) {
      sendApiError(
        reply,
        403,
        'cross_origin',
        'This API does not accept requests from other sites.',
      );
      return;
    }
    done();
  });

  // Two-step sign-in's routes, under this plugin's hook and JSON-only parsing.
  await app.register(twoStepApiRoutes, { ctx, limits });

  async function requireUser(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<Extract<SessionValidation, { user: object }> | null> {
    const auth = await getAuth(ctx, request);
    if (!auth.user) {
      sendApiError(reply, 401, 'unauthenticated', 'Log in first.');
      return null;
    }
    // REQUIRE_TWO_STEP: a session without two-step sign-in may only set it up (two-step-api.ts).
    if (!(await twoStepSetupRequired(ctx, auth.user.id))) return auth;
    sendApiError(reply, 403, 'two_step_setup_required', TWO_STEP_SETUP_REQUIRED_API);
    return null;
  }

  /** Counts one hit; true (and the 429 sent) when a limit is exhausted. */
  async function limited(reply: FastifyReply, checks: Array<[LimitName, string]>) {
    const result = await limits.consume(checks);
    if (result.ok) return false;
    sendRateLimited(reply, result);
    return true;
  }

  app.post(
    '/signup',
    {
      schema: {
        summary: 'Create an account and send the verification message',
        body: z.object({ email: emailField, password: newPasswordField }),
        response: {
          202: z.object({ status: z.literal('pending') }),
          400: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      // Only a valid attempt counts against the limits: typos do not lock anyone out.
      if (!validateSignup(ctx, request.body)) {
        const limited = await limits.consume(
          clientAndAddress('signup', request.ip, request.body.email),
        );
        if (!limited.ok) return sendRateLimited(reply, limited);
      }
      const result = await signUp(ctx, { ...request.body, requestId: request.id });
      if (result.status === 'invalid') {
        return sendApiError(reply, 400, result.code, result.message, { field: result.field });
      }
      return reply.code(202).send({ status: 'pending' });
    },
  );

  app.post(
    '/verify',
    {
      schema: {
        summary: 'Confirm an address with the link token, or with the address and its code',
        body: tokenOrCode,
        response: {
          200: z.object({ status: z.enum(['verified', 'already_verified']) }),
          400: errorResponse,
          410: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if ('token' in body) {
        const result = await confirmSignupToken(ctx, body.token);
        switch (result.status) {
          case 'verified':
          case 'already_verified':
            return reply.send({ status: result.status });
          case 'expired':
            return sendApiError(
              reply,
              410,
              'token_expired',
              'This link has expired. Ask for a new one.',
            );
          case 'invalid':
            return sendApiError(reply, 400, 'token_invalid', 'This link is not valid.');
        }
      }
      const limited = await limits.consume([['verifyPerClient', request.ip]]);
      if (!limited.ok) return sendRateLimited(reply, limited);
      const result = await confirmSignupCode(ctx, body.email, body.code);
      switch (result.status) {
        case 'verified':
        case 'already_verified':
          return reply.send({ status: result.status });
        case 'expired':
          return sendApiError(
            reply,
            410,
            'token_expired',
            'This code has expired. Ask for a new one.',
          );
        case 'too_many_attempts':
          return sendApiError(
            reply,
            400,
            'too_many_attempts',
            'Too many wrong codes. Ask for a new code or use the link.',
          );
        default:
          return sendApiError(reply, 400, 'code_invalid', 'That code is not right.');
      }
    },
  );

  app.post(
    '/verify/resend',
    {
      schema: {
        summary:
          'Send a new verification message (same answer whether or not the address has an account)',
        body: z.object({ email: emailField }),
        response: {
          202: z.object({ status: z.literal('pending') }),
          400: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const { email } = request.body;
      if (!isValidEmail(email)) {
        return sendApiError(reply, 400, 'email_invalid', 'Enter a valid email address.', {
          field: 'email',
        });
      }
      const limited = await limits.consume(clientAndAddress('resend', request.ip, email));
      if (!limited.ok) return sendRateLimited(reply, limited);
      await resendSignupVerification(ctx, email, request.id);
      return reply.code(202).send({ status: 'pending' });
    },
  );

  const meResponse = z.object({ email: z.string(), emailVerified: z.boolean() });

  app.post(
    '/login',
    {
      schema: {
        summary:
          'Log in; sets the session cookie, or (two-step sign-in on) answers a challenge for POST /api/login/two-step',
        body: z.object({ email: emailField, password: passwordField }),
        response: {
          200: z.union([meResponse, twoStepRequiredResponse]),
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const limited = await limits.consume(
        clientAndAddress('login', request.ip, request.body.email),
      );
      if (!limited.ok) return sendRateLimited(reply, limited);
      const result = await logIn(ctx, request.body);
      if (result.status === 'invalid_credentials') {
        return sendApiError(reply, 401, 'invalid_credentials', 'Wrong email address or password.');
      }
      if (result.status === 'email_not_verified') {
        return sendApiError(
          reply,
          403,
          'email_not_verified',
          'Confirm your email address before logging in.',
        );
      }
      if (result.status === 'two_step_required') {
        // No session (and no cookie) until the code: POST /api/login/two-step.
        return reply.send({ status: 'two_step_required', challenge: result.challenge });
      }
      setSessionCookie(ctx, reply, result.sessionToken, result.expiresAt);
      return reply.send({
        email: result.user.email,
        emailVerified: result.user.email_verified_at !== null,
      });
    },
  );

  app.post(
    '/logout',
    {
      schema: {
        summary: 'End this session',
        response: { 200: z.object({ status: z.literal('logged_out') }) },
      },
    },
    async (request, reply) => {
      const token = sessionToken(ctx, request);
      if (token) await invalidateSession(ctx, token);
      clearSessionCookie(ctx, reply);
      return reply.send({ status: 'logged_out' });
    },
  );

  app.get(
    '/me',
    {
      schema: { summary: 'The logged-in user', response: { 200: meResponse, 401: errorResponse } },
    },
    async (request, reply) => {
      const { user } = await getAuth(ctx, request);
      if (!user) return sendApiError(reply, 401, 'unauthenticated', 'Log in first.');
      reply.header('Cache-Control', 'no-store');
      return reply.send({ email: user.email, emailVerified: user.email_verified_at !== null });
    },
  );

  app.post(
    '/contact',
    {
      schema: {
        summary: 'Submit a contact message; it is delivered only after the sender confirms',
        body: z.object({
          name: z.string().max(1000),
          email: emailField,
          message: z.string().max(20_000),
          website: z.string().max(1000).optional(),
        }),
        response: {
          202: z.object({ status: z.literal('pending') }),
          400: errorResponse,
          404: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      if (!ctx.config.contact.to) {
        return sendApiError(
          reply,
          404,
          'contact_disabled',
          'This site has no contact address configured.',
        );
      }
      if (Object.keys(validateContact(request.body)).length === 0) {
        const limited = await limits.consume(
          clientAndAddress('contact', request.ip, request.body.email),
        );
        if (!limited.ok) return sendRateLimited(reply, limited);
      }
      const result = await submitContact(ctx, request.body, request.id);
      if (result.status === 'invalid') {
        const [field, message] = Object.entries(result.errors)[0] ?? [
          'message',
          'Invalid message.',
        ];
        return sendApiError(reply, 400, `${field}_invalid`, message ?? 'Invalid value.', {
          field,
          fields: result.errors,
        });
      }
      return reply.code(202).send({ status: 'pending' });
    },
  );

  app.post(
    '/contact/confirm',
    {
      schema: {
        summary:
          'Accept a pending contact message with its link token, or the address and its code',
        body: tokenOrCode,
        response: {
          200: z.object({ status: z.enum(['accepted', 'already_accepted']) }),
          400: errorResponse,
          410: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      let result: Awaited<ReturnType<typeof confirmContactCode>>;
      if ('token' in body) {
        result = await confirmContactToken(ctx, body.token);
      } else {
        const limited = await limits.consume([['verifyPerClient', request.ip]]);
        if (!limited.ok) return sendRateLimited(reply, limited);
        result = await confirmContactCode(ctx, body.email, body.code);
      }
      switch (result.status) {
        case 'accepted':
        case 'already_accepted':
          return reply.send({ status: result.status });
        case 'expired':
          return sendApiError(
            reply,
            410,
            'token_expired',
            'This link has expired. Ask for a new one from the link page.',
          );
        case 'too_many_attempts':
          return sendApiError(
            reply,
            400,
            'too_many_attempts',
            'Too many wrong codes. Use the link instead.',
          );
        case 'code_invalid':
          return sendApiError(reply, 400, 'code_invalid', 'That code is not right.');
        default:
          return sendApiError(reply, 400, 'token_invalid', 'This link is not valid.');
      }
    },
  );

  // Password reset (SPEC §2, §6; docs/decisions/012).
  app.post(
    '/password/forgot',
    {
      schema: {
        summary:
          'Email a password reset link (same answer whether or not the address has an account)',
        body: z.object({ email: emailField }),
        response: {
          202: z.object({ status: z.literal('pending') }),
          400: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const { email } = request.body;
      if (!isValidEmail(email)) {
        return sendApiError(reply, 400, 'email_invalid', 'Enter a valid email address.', {
          field: 'email',
        });
      }
      if (await limited(reply, clientAndAddress('forgot', request.ip, email))) return reply;
      await requestPasswordReset(ctx, email, request.id);
      return reply.code(202).send({ status: 'pending' });
    },
  );

  app.post(
    '/password/reset',
    {
      schema: {
        summary:
          'Set a new password with the emailed link token; every session of the account ends',
        body: z.object({
          token: tokenField,
          password: newPasswordField,
          // Required when the account has two-step sign-in on: a code from the app or a recovery code.
          code: z.string().max(100).optional(),
        }),
        response: {
          200: z.object({ status: z.literal('password_reset') }),
          400: errorResponse,
          410: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      if (await limited(reply, [['resetPerClient', request.ip]])) return reply;
      const code = request.body.code ?? '';
      const twoStepUser = await resetLinkTwoStepUser(ctx, request.body.token);
      const attempt = await countingWrongCodes(
        limits,
        { userId: twoStepUser && code.trim() ? twoStepUser : null },
        () => resetPassword(ctx, { ...request.body, code, requestId: request.id }),
        (outcome) => outcome.status === 'two_step_refused',
      );
      if ('refused' in attempt) return sendRateLimited(reply, attempt.refused);
      const { result } = attempt;
      switch (result.status) {
        case 'two_step_refused':
          return sendApiError(reply, 400, result.code, result.message, { field: 'code' });
        case 'reset':
          return reply.send({ status: 'password_reset' });
        case 'weak_password':
          return sendApiError(reply, 400, result.code, result.message, { field: 'password' });
        case 'expired':
          return sendApiError(
            reply,
            410,
            'token_expired',
            'This link has expired. Ask for a new one.',
          );
        case 'used':
          return sendApiError(
            reply,
            410,
            'token_used',
            'This link was already used. Ask for a new one.',
          );
        default:
          return sendApiError(reply, 400, 'token_invalid', 'This link is not valid.');
      }
    },
  );

  // The account (SPEC §2; docs/decisions/012): each change asks for the current password.
  app.post(
    '/password/change',
    {
      schema: {
        summary:
          'Change the password; other sessions end and this one continues under a new cookie',
        body: z.object({ currentPassword: passwordField, newPassword: newPasswordField }),
        response: {
          200: z.object({ status: z.literal('password_changed') }),
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const invalid = validatePasswordChange(ctx, auth.user, request.body.newPassword);
      if (invalid) {
        return sendApiError(reply, 400, invalid.code, invalid.message, { field: 'newPassword' });
      }
      if (await limited(reply, [['accountPerUser', auth.user.id]])) return reply;
      const result = await changePassword(ctx, auth.user, auth.session.idHash, {
        ...request.body,
        requestId: request.id,
      });
      if (result.status === 'invalid') {
        return sendApiError(reply, 400, result.code, result.message, { field: result.field });
      }
      setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
      return reply.send({ status: 'password_changed' });
    },
  );

  app.post(
    '/email/change',
    {
      schema: {
        summary:
          'Ask to change the address: a link and a code go to the new one, a notice to the old one',
        body: z.object({ newEmail: emailField, password: passwordField }),
        response: {
          202: z.object({ status: z.literal('pending') }),
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const { newEmail, password } = request.body;
      const invalid = validateEmailChange(auth.user, newEmail);
      if (invalid) {
        return sendApiError(reply, 400, invalid.code, invalid.message, { field: 'newEmail' });
      }
      const checks: Array<[LimitName, string]> = [
        ['accountPerUser', auth.user.id],
        ['emailChangePerAddress', normaliseEmail(newEmail)],
      ];
      if (await limited(reply, checks)) return reply;
      const result = await requestEmailChange(ctx, auth.user, {
        newEmail,
        password,
        currentSessionIdHash: auth.session.idHash,
        requestId: request.id,
      });
      if (result.status === 'invalid') {
        return sendApiError(reply, 400, result.code, result.message, { field: result.field });
      }
      setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
      return reply.code(202).send({ status: 'pending' });
    },
  );

  app.post(
    '/email/confirm',
    {
      schema: {
        summary: 'Confirm a change of address with the link token, or (logged in) with the code',
        body: z.union([z.object({ token: tokenField }), z.object({ code: z.string().max(20) })]),
        response: {
          200: z.object({
            status: z.enum(['changed', 'already_changed']),
            email: z.string(),
          }),
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          409: errorResponse,
          410: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      let result: EmailChangeCodeResult;
      if ('token' in body) {
        if (await limited(reply, [['resetPerClient', request.ip]])) return reply;
        result = await confirmEmailChangeToken(ctx, body.token);
      } else {
        const auth = await requireUser(request, reply);
        if (!auth) return reply;
        if (await limited(reply, [['verifyPerClient', request.ip]])) return reply;
        result = await confirmEmailChangeCode(ctx, auth.user.id, body.code);
      }
      switch (result.status) {
        case 'changed':
        case 'already_changed':
          return reply.send({ status: result.status, email: result.email });
        case 'taken':
          return sendApiError(
            reply,
            409,
            'email_taken',
            'Another account started using this address first; your address stays as it is.',
          );
        case 'expired':
          return sendApiError(reply, 410, 'token_expired', 'This link or code has expired.');
        case 'too_many_attempts':
          return sendApiError(
            reply,
            400,
            'too_many_attempts',
            'Too many wrong codes. Use the link, or ask for the change again.',
          );
        case 'code_invalid':
          return sendApiError(reply, 400, 'code_invalid', 'That code is not right.');
        default:
          return sendApiError(reply, 400, 'token_invalid', 'This link is not valid.');
      }
    },
  );

  const sessionItem = z.object({
    id: z.string(),
    createdAt: z.string(),
    lastSeenAt: z.string(),
    expiresAt: z.string(),
    current: z.boolean(),
  });

  app.get(
    '/sessions',
    {
      schema: {
        summary: 'The sessions of the logged-in account, newest first; the current one marked',
        response: {
          200: z.object({ sessions: z.array(sessionItem) }),
          401: errorResponse,
          403: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      const sessions = await listSessions(ctx, auth.user.id, auth.session.idHash);
      return reply.send({
        sessions: sessions.map((s) => ({
          id: s.id,
          createdAt: new Date(s.createdAt).toISOString(),
          lastSeenAt: new Date(s.lastSeenAt).toISOString(),
          expiresAt: new Date(s.expiresAt).toISOString(),
          current: s.current,
        })),
      });
    },
  );

  const endedResponse = z.object({ status: z.literal('logged_out'), count: z.number() });

  async function endSessionsRoute(
    request: FastifyRequest,
    reply: FastifyReply,
    password: string,
    which: 'all' | string[],
  ) {
    const auth = await requireUser(request, reply);
    if (!auth) return reply;
    if (await limited(reply, [['accountPerUser', auth.user.id]])) return reply;
    const { idHash } = auth.session;
    const result = await endSessions(
      ctx,
      auth.user,
      { idHash, publicId: publicSessionId(idHash) },
      { password, which },
    );
    if (result.status === 'invalid') {
      return sendApiError(reply, 400, result.code, result.message, { field: 'password' });
    }
    if (result.includesCurrent) clearSessionCookie(ctx, reply);
    else if (result.session) {
      setSessionCookie(ctx, reply, result.session.token, result.session.endsAt);
    }
    return reply.send({ status: 'logged_out', count: result.count });
  }

  app.post(
    '/sessions/end',
    {
      schema: {
        summary: 'End the named sessions of this account (password required)',
        body: z.object({
          password: passwordField,
          ids: z
            .array(z.string().regex(/^[0-9a-f]{16}$/))
            .min(1)
            .max(100),
        }),
        response: {
          200: endedResponse,
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) =>
      endSessionsRoute(request, reply, request.body.password, request.body.ids),
  );

  app.post(
    '/logout/everywhere',
    {
      schema: {
        summary: 'End every session of this account, this one included (password required)',
        body: z.object({ password: passwordField }),
        response: {
          200: endedResponse,
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => endSessionsRoute(request, reply, request.body.password, 'all'),
  );

  app.post(
    '/account/delete',
    {
      schema: {
        summary:
          'Delete the account with its sessions, secrets and unsent mail (password required)',
        body: z.object({ password: passwordField }),
        response: {
          200: z.object({ status: z.literal('deleted') }),
          400: errorResponse,
          401: errorResponse,
          403: errorResponse,
          429: errorResponse,
        },
      },
    },
    async (request, reply) => {
      const auth = await requireUser(request, reply);
      if (!auth) return reply;
      if (await limited(reply, [['accountPerUser', auth.user.id]])) return reply;
      const result = await deleteAccount(ctx, auth.user, request.body);
      if (result.status === 'invalid') {
        return sendApiError(reply, 400, result.code, result.message, { field: 'password' });
      }
      clearSessionCookie(ctx, reply);
      return reply.send({ status: 'deleted' });
    },
  );
};
