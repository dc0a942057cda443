// The real app on a real loopback port, and Debian's Chromium driven by playwright-core.
import net from 'node:net';
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type Page,
} from 'playwright-core';
import { expect } from 'vitest';
import { createTestRuntime, type TestRuntime } from './runtime.ts';

/** Chromium flags for this sandboxed, offline machine (no background traffic, no GPU). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserApp {
  rt: TestRuntime;
  browser: Browser;
  /** BASE_URL of the app: emailed links point here. */
  baseUrl: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** The port is chosen first so BASE_URL, and with it every emailed link, points at the server. */
export async function startBrowserApp(env: Record<string, string> = {}): Promise<BrowserApp> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const rt = await createTestRuntime({ env: { BASE_URL: baseUrl, ...env } });
  await rt.app.listen({ port, host: '127.0.0.1' });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  return {
    rt,
    browser,
    baseUrl,
    async close() {
      await browser.close();
      await rt.close();
    },
  };
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors (CSP violations, failed loads) and uncaught script errors, as they happen. */
  errors: string[];
}

/** A fresh context on the app (relative URLs resolve against BASE_URL) with one page. */
export async function openPage(
  app: BrowserApp,
  options: BrowserContextOptions = {},
): Promise<OpenedPage> {
  const context = await app.browser.newContext({ baseURL: app.baseUrl, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { context, page, errors };
}

export interface LatestMail {
  subject: string;
  verification: { url: string | null; code: string | null };
}

/** The newest message to `to` whose subject matches, through GET /_inbox/api/latest. */
export async function latestMail(
  app: BrowserApp,
  to: string,
  subject: RegExp,
): Promise<LatestMail> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const res = await fetch(
      `${app.baseUrl}/_inbox/api/latest?to=${encodeURIComponent(to)}&wait=2000`,
    );
    if (res.status === 200) {
      const message = (await res.json()) as LatestMail;
      if (subject.test(message.subject)) return message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no message to ${to} matching ${subject}`);
}

/** An account signed up and confirmed through the API, as a user's own test setup would. */
export async function confirmedAccount(
  app: BrowserApp,
  email: string,
  password: string,
): Promise<void> {
  const signup = await fetch(`${app.baseUrl}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  expect(signup.status).toBe(202);
  const { verification } = await latestMail(app, email, /Confirm your email/);
  const token = new URL(verification.url ?? '').pathname.split('/').pop();
  const verify = await fetch(`${app.baseUrl}/api/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  expect(verify.status).toBe(200);
}
