// Security headers, decided once here. Helmet computes them once at start-up; every response
// then gets the same prepared header set (Helmet's Fastify plugin rebuilds it per request).
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import type { Config } from '../config.ts';

export interface SecurityHeaders {
  /** For HTML pages: the full Helmet set with a strict CSP. */
  page: Record<string, string>;
  /** For JSON answers, as OWASP's REST cheat sheet lists: no sniffing, no framing, no caching. */
  api: Record<string, string>;
}

export function securityHeaders(config: Pick<Config, 'isProduction'>): SecurityHeaders {
  const middleware = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        frameSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        ...(config.isProduction ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: config.isProduction
      ? { maxAge: 31_536_000, includeSubDomains: true }
      : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name];
    },
  };
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, () => {});
  // Pages and API answers are personal or single-use: nothing is cached unless a route says so.
  headers['Cache-Control'] = 'no-store';
  const api: Record<string, string> = {
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
  if (headers['Strict-Transport-Security']) {
    api['Strict-Transport-Security'] = headers['Strict-Transport-Security'];
  }
  return { page: headers, api };
}
