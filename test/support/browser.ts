// The real app on a real loopback port, and Debian's Chromium driven by playwright-core.
import net from 'node:net';
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type Page,
} from 'playwright-core';
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
