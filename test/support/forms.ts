// Helpers for page tests: a cookie jar, the CSRF field, form posts, addresses and tokens.
import type { LightMyRequestResponse } from 'fastify';
import type { TestRuntime } from './runtime.ts';

export const BASE_URL = 'http://mailproof.test';

let seq = 0;

export type Jar = Record<string, string>;

export function address(label: string): string {
  seq += 1;
  return `${label}-${seq}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

export function tokenOf(url: string | null): string {
  const token = new URL(url ?? `${BASE_URL}/`).pathname.split('/').pop();
  if (!token) throw new Error(`no token in ${url}`);
  return token;
}

export function pathOf(link: string): string {
  const url = new URL(link);
  return `${url.pathname}${url.search}`;
}

export function remember(res: LightMyRequestResponse, jar: Jar = {}): Jar {
  for (const cookie of res.cookies) jar[cookie.name] = cookie.value;
  return jar;
}

export function cookieHeader(jar: Jar): string {
  return Object.entries(jar)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no _csrf field in the page');
  return match[1];
}

export async function getPage(rt: TestRuntime, url: string, jar: Jar = {}) {
  const res = await rt.app.inject({ method: 'GET', url, headers: { cookie: cookieHeader(jar) } });
  remember(res, jar);
  return res;
}

export async function postForm(
  rt: TestRuntime,
  url: string,
  fields: Record<string, string>,
  jar: Jar,
) {
  const res = await rt.app.inject({
    method: 'POST',
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookieHeader(jar),
    },
    payload: new URLSearchParams(fields).toString(),
  });
  remember(res, jar);
  return res;
}
