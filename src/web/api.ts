// The JSON API. Bodies are JSON only: a cross-site form cannot send application/json without a
// CORS preflight, which this server never grants, so these routes need no CSRF token.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isValidEmail } from '../accounts/email.ts';
import {
  confirmSignupCode,
  confirmSignupToken,
  resendSignupVerification,
} from '../accounts/email-verification.ts';
import { logIn } from '../accounts/login.ts';
import { invalidateSession } from '../accounts/session.ts';
import { signUp, validateSignup } from '../accounts/signup.ts';
import {
  confirmContactCode,
  confirmContactToken,
  submitContact,
  validateContact,
} from '../contact/contact.ts';
import type { AppContext } from '../context.ts';
import { clientAndAddress, type RateLimits } from '../ratelimit/limiter.ts';
import { sendApiError, sendRateLimited } from './errors.ts';
import { clearSessionCookie, getAuth, sessionToken, setSessionCookie } from './session-cookie.ts';

export interface ApiOptions {
  ctx: AppContext;
  limits: RateLimits;
}

const emailField = z.string().max(1000);
const passwordField = z.string().max(4096);

const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).loose(),
});

export const apiRoutes: FastifyPluginAsyncZod<ApiOptions> = async (app, { ctx, limits }) => {
  // JSON only (see docs/decisions/006): a text/plain body, which a cross-site form can send, gets 415.
  app.removeContentTypeParser('text/plain');

  app.post(
    '/signup',
    {
      schema: {
        summary: 'Create an account and send the verification message',
        body: z.object({ email: emailField, password: passwordField }),
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
        if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
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
        body: z.union([
          z.object({ token: z.string().max(200) }),
          z.object({ email: emailField, code: z.string().max(20) }),
        ]),
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
      if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
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
      if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
      await resendSignupVerification(ctx, email, request.id);
      return reply.code(202).send({ status: 'pending' });
    },
  );

  const meResponse = z.object({ email: z.string(), emailVerified: z.boolean() });

  app.post(
    '/login',
    {
      schema: {
        summary: 'Log in; sets the session cookie',
        body: z.object({ email: emailField, password: passwordField }),
        response: { 200: meResponse, 401: errorResponse, 403: errorResponse, 429: errorResponse },
      },
    },
    async (request, reply) => {
      const limited = await limits.consume(
        clientAndAddress('login', request.ip, request.body.email),
      );
      if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
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
        if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
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
        body: z.union([
          z.object({ token: z.string().max(200) }),
          z.object({ email: emailField, code: z.string().max(20) }),
        ]),
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
        if (!limited.ok) return sendRateLimited(reply, limited.retryAfterSeconds);
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
};
