// Server-rendered pages. They call the same domain functions as the JSON API.
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { VNode } from 'preact';
import { isValidEmail } from '../accounts/email.ts';
import {
  confirmSignupCode,
  confirmSignupToken,
  resendSignupVerification,
  targetOfToken,
} from '../accounts/email-verification.ts';
import { logIn } from '../accounts/login.ts';
import { invalidateSession } from '../accounts/session.ts';
import { signUp, validateSignup } from '../accounts/signup.ts';
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
import { clearSessionCookie, getAuth, sessionToken, setSessionCookie } from './session-cookie.ts';
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
  AccountPage,
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

const FLASH_COOKIE = 'mp_flash';

function field(body: unknown, name: string): string {
  const value = (body as Form | undefined)?.[name];
  return typeof value === 'string' ? value : '';
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
    flash: takeFlash(request, reply),
    inboxEnabled: ctx.config.inbox.enabled,
    contactEnabled: ctx.config.contact.to !== null,
  };
}

function takeFlash(request: FastifyRequest, reply: FastifyReply): Flash | null {
  const raw = request.cookies[FLASH_COOKIE];
  if (!raw) return null;
  reply.clearCookie(FLASH_COOKIE, { path: '/' });
  const unsigned = request.unsignCookie(raw);
  if (!unsigned.valid || !unsigned.value) return null;
  try {
    return JSON.parse(unsigned.value) as Flash;
  } catch {
    return null;
  }
}

function setFlash(ctx: AppContext, reply: FastifyReply, flash: Flash) {
  reply.setCookie(FLASH_COOKIE, JSON.stringify(flash), {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    signed: true,
    secure: ctx.config.isProduction,
  });
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

export const pageRoutes: FastifyPluginAsync<PageOptions> = async (app, { ctx, limits }) => {
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  const csrf = { preHandler: app.csrfProtection };

  async function limited(
    request: FastifyRequest,
    reply: FastifyReply,
    checks: Array<[LimitName, string]>,
    back: string,
  ): Promise<boolean> {
    const result = await limits.consume(checks);
    if (result.ok) return false;
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
    const valid = !validateSignup(ctx, { email, password });
    if (
      valid &&
      (await limited(request, reply, clientAndAddress('signup', request.ip, email), '/signup'))
    ) {
      return reply;
    }
    const result = await signUp(ctx, { email, password, requestId: request.id });
    const page = await pageContext(ctx, request, reply);
    if (result.status === 'invalid') {
      return sendPage(
        reply,
        <SignupPage
          ctx={page}
          email={email}
          errors={{ [result.field]: result.message }}
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

  app.get('/account', async (request, reply) => {
    const { user } = await getAuth(ctx, request);
    if (!user) {
      setFlash(ctx, reply, { kind: 'info', message: 'Log in to see your account.' });
      return reply.redirect('/login', 303);
    }
    return sendPage(
      reply,
      <AccountPage
        ctx={await pageContext(ctx, request, reply)}
        email={user.email}
        verified={user.email_verified_at !== null}
      />,
    );
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
