// The Fastify application: the list of plugins it registers.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import cookie from '@fastify/cookie';
import csrfProtection from '@fastify/csrf-protection';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { AppContext } from '../context.ts';
import { createRouteTable, type RouteTable } from '../inbox/checks/index.ts';
import { createFaultInjector, type FaultInjector } from '../inbox/faults.ts';
import { inboxRoutes } from '../inbox/routes.tsx';
import type { InboxStore } from '../inbox/store.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimits } from '../ratelimit/limiter.ts';
import { adminOutboxRoutes } from './admin-outbox.tsx';
import { apiRoutes } from './api.ts';
import { NUL_CHARACTER_CODE, nulInJson, nulInUrl, nulRefused } from './body-checks.ts';
import { clientErrorHandler } from './client-errors.ts';
import { sendApiError } from './errors.ts';
import { documentSharedAnswers } from './openapi.ts';
import { opsRoutes } from './ops-routes.ts';
import { pageContext, pageRoutes, sendPage } from './pages.tsx';
import { securityHeaders } from './security-headers.ts';
import { serializerCompiler } from './serializer.ts';
import { twoStepPageRoutes } from './two-step-routes.tsx';
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from './unavailable.ts';
import { ErrorPage } from './views/pages.tsx';

export interface WebOptions {
  ctx: AppContext;
  limits: RateLimits;
  inbox: InboxStore | null;
  faults?: FaultInjector | null;
  logger?: boolean;
  /** Filled with the app's GET routes as they are registered (the inbox's link check reads it). */
  routes?: RouteTable;
  metrics: Metrics;
  /** An outbox worker runs in this process (/readyz says so). */
  workerInProcess: boolean;
}

const STATIC_FILES: Record<string, { type: string; body: Buffer }> = {
  'style.css': {
    type: 'text/css; charset=utf-8',
    body: readFileSync(new URL('./static/style.css', import.meta.url)),
  },
  'inbox.js': {
    type: 'text/javascript; charset=utf-8',
    body: readFileSync(new URL('../inbox/static/inbox.js', import.meta.url)),
  },
};

export async function buildWebApp(options: WebOptions): Promise<FastifyInstance> {
  const { ctx, limits, inbox } = options;
  const { config } = ctx;
  const app = Fastify({
    loggerInstance: ctx.log,
    bodyLimit: 64 * 1024,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler(securityHeaders(config).api),
    requestIdHeader: false,
    genReqId: requestIds(ctx),
    // Below info level no request line is logged, so a child logger per request is wasted work.
    childLoggerFactory: (logger, bindings, options) =>
      ctx.log.isLevelEnabled('info') ? logger.child(bindings, options) : logger,
    // A malformed or overlong URL is refused by the router before any hook runs: answer it in
    // our own shape, with the security headers, and without echoing the URL (it may be a token).
    frameworkErrors: (error, _request, reply) => {
      reply.headers(securityHeaders(config).api);
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      return sendApiError(
        reply,
        tooLong ? 414 : 400,
        tooLong ? 'url_too_long' : 'bad_url',
        tooLong ? 'The address is too long.' : 'The address is not valid.',
      );
    },
  }).withTypeProvider<ZodTypeProvider>();

  // The inbox's link check resolves links into this app against the routes registered below.
  const routes = options.routes ?? createRouteTable();
  app.addHook('onRoute', (route) => routes.add(route.method, route.url));

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Fastify's own JSON parser, then the NUL check of body-checks.ts.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    // A route that takes no body (logout, the inbox's deletes) does not mind the empty one that
    // many fetch wrappers send with their JSON content type.
    if (text.length === 0 && !request.routeOptions.schema?.body) {
      done(null, undefined);
      return;
    }
    parseJson(request, text, (error: Error | null, value?: unknown) => {
      const refused = error ? clearerJsonError(error, text) : nulInJson(text, value);
      if (refused) done(refused, undefined);
      else done(null, value);
    });
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: `${config.appName} API`,
        version: '1.0.0',
        description:
          'Verified sign-up, sessions and the mail testing inbox. Errors are {"error":{"code","message"}} with a 4xx status.',
      },
      servers: [{ url: config.baseUrl }],
    },
    transformObject: (input) =>
      documentSharedAnswers('openapiObject' in input ? input.openapiObject : input.swaggerObject, {
        inboxAuth: Boolean(config.inbox.auth),
      }),
    // Only the JSON routes belong in the document; pages are for browsers.
    transform: (input) =>
      /^\/(api|_inbox\/api)\//.test(input.url)
        ? jsonSchemaTransform(input)
        : { schema: { ...input.schema, hide: true }, url: input.url },
  });

  await app.register(cookie, {
    // The cookie-signing key is derived, so SECRET_KEY itself is used for one purpose only.
    secret: createHmac('sha256', config.secretKey).update('mailproof cookie signing').digest('hex'),
  });
  await app.register(csrfProtection, {
    cookieKey: config.isProduction ? '__Host-mp_csrf' : 'mp_csrf',
    cookieOpts: {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: config.isProduction,
      signed: true,
    },
  });
  const { metrics } = options;
  // By the route's pattern, never the URL itself: URLs carry one-time tokens.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  const headers = securityHeaders(config);
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(isApiPath(request.url) ? headers.api : headers.page);
    // Refused like a NUL in a body (body-checks.ts), here where every route's query passes.
    done(nulInUrl(request.url) ? nulRefused() : undefined);
  });

  app.setNotFoundHandler(async (request, reply) => {
    if (isApiPath(request.url)) {
      return sendApiError(reply, 404, 'not_found', 'No such route.');
    }
    return sendPage(
      reply,
      <ErrorPage
        ctx={await pageContext(ctx, request, reply)}
        title="Page not found"
        message="There is nothing at this address."
      />,
      404,
    );
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const unavailable = isDatabaseUnavailable(error);
    const status = unavailable
      ? 503
      : error.statusCode && error.statusCode >= 400 && error.statusCode < 500
        ? error.statusCode
        : 500;
    if (status === 500) request.log.error({ reqId: request.id, err: error }, 'request failed');
    if (unavailable) {
      request.log.warn(
        { reqId: request.id, code: (error as { code?: string }).code },
        'database unavailable',
      );
      reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
    }
    const { code, message } = unavailable
      ? {
          code: 'service_unavailable',
          message: 'The service is briefly unavailable. Please try again in a few seconds.',
        }
      : describeError(error, status, isApiPath(request.url));
    if (isApiPath(request.url)) return sendApiError(reply, status, code, message);
    return sendPage(
      reply,
      <ErrorPage
        ctx={await pageContext(ctx, request, reply).catch(() => fallbackPageContext(ctx))}
        title={
          status === 403
            ? 'Form expired'
            : status === 503
              ? 'Please try again'
              : status === 500
                ? 'Something went wrong'
                : 'Request not accepted'
        }
        message={message}
      />,
      status,
    );
  });

  app.get('/static/:file', async (request, reply) => {
    const name = (request.params as { file: string }).file;
    const file = Object.hasOwn(STATIC_FILES, name) ? STATIC_FILES[name] : undefined;
    if (!file) return reply.callNotFound();
    return reply.header('Cache-Control', 'public, max-age=3600').type(file.type).send(file.body);
  });

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.register(opsRoutes, { ctx, metrics, workerInProcess: options.workerInProcess });

  await app.register(apiRoutes, { prefix: '/api', ctx, limits });
  await app.register(pageRoutes, { ctx, limits });
  await app.register(twoStepPageRoutes, { ctx, limits });
  await app.register(adminOutboxRoutes, { ctx });
  if (inbox) {
    await app.register(inboxRoutes, {
      prefix: '/_inbox',
      ctx,
      inbox,
      faults: options.faults ?? createFaultInjector(),
      routes,
    });
  }
  return app as unknown as FastifyInstance;
}

const FORBIDDEN_KEY_CODE = 'MAILPROOF_FORBIDDEN_KEY';

/**
 * The parser refuses `__proto__` and `constructor.prototype` keys (prototype poisoning) with the
 * same error as text that is not JSON at all; tell the two apart, on the error path only.
 */
function clearerJsonError(error: Error, text: string): Error {
  if ((error as FastifyError).code !== 'FST_ERR_CTP_INVALID_JSON_BODY') return error;
  try {
    JSON.parse(text);
  } catch {
    return error;
  }
  return Object.assign(new Error('a forbidden key'), { statusCode: 400, code: FORBIDDEN_KEY_CODE });
}

/** A random prefix per process and a counter: unique across instances, and cheap. */
function requestIds(ctx: AppContext): () => string {
  const prefix = ctx.random.bytes(6).toString('base64url');
  let counter = 0;
  return () => `${prefix}-${(++counter).toString(36)}`;
}

function isApiPath(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/_inbox/api/');
}

function describeError(
  error: FastifyError,
  status: number,
  api: boolean,
): { code: string; message: string } {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const where = (first?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || 'body';
    return {
      code: 'invalid_request',
      message: `Invalid request: ${where}: ${first?.message ?? 'invalid value'}`,
    };
  }
  switch (error.code) {
    case FORBIDDEN_KEY_CODE:
      return {
        code: 'invalid_request',
        message: 'Invalid request: no key may be "__proto__" or "constructor" with a "prototype".',
      };
    case NUL_CHARACTER_CODE:
      return {
        code: 'invalid_request',
        message: 'Invalid request: no field may hold the NUL character (U+0000).',
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'body_too_large', message: 'The request body is too large.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        code: 'unsupported_media_type',
        message: api
          ? 'Send the body as application/json.'
          : 'This page takes its form as a browser sends it (application/x-www-form-urlencoded). Programs can use the JSON API under /api/.',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'invalid_json', message: 'The body is not valid JSON.' };
    case 'FST_CSRF_INVALID_TOKEN':
    case 'FST_CSRF_MISSING_SECRET':
      return {
        code: 'csrf_invalid',
        message:
          'This form has expired or was sent from elsewhere. Go back, reload the page and try again.',
      };
  }
  if (error.code === 'FST_ERR_VALIDATION' || status === 400) {
    return { code: 'invalid_request', message: 'The request is not valid.' };
  }
  if (status === 500)
    return {
      code: 'internal_error',
      message: 'Something went wrong on our side. Please try again.',
    };
  return { code: 'bad_request', message: 'The request could not be handled.' };
}

function fallbackPageContext(ctx: AppContext) {
  return {
    appName: ctx.branding.appName,
    csrfToken: '',
    user: null,
    flash: null,
    inboxEnabled: false,
    contactEnabled: false,
  };
}
