// The inbox list updates live (Server-Sent Events) when a message arrives, without a reload.
import net from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let rt: TestRuntime;
let browser: Browser;
let baseUrl: string;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  rt = await createTestRuntime({ env: { BASE_URL: baseUrl } });
  await rt.app.listen({ port, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await rt?.close();
});

describe('inbox live updates', () => {
  it('shows a new message in the open list without a reload, escaped', async () => {
    const page = await browser.newPage({ baseURL: baseUrl });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    try {
      await page.goto('/_inbox');
      await page.getByText('No messages yet.').waitFor();
      await page.waitForFunction(() =>
        document.getElementById('live-status')?.textContent?.startsWith('Live'),
      );
      let reloaded = false;
      page.on('load', () => {
        reloaded = true;
      });
      const email = `live-${process.pid}@example.com`;
      const signup = await fetch(`${baseUrl}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: 'a passphrase long enough for this' }),
      });
      expect(signup.status).toBe(202);
      const item = page.locator('ul.messages li', { hasText: email });
      await item.waitFor({ timeout: 5000 });
      expect(await item.locator('.subject').textContent()).toContain('Confirm your email address');
      const href = await item.locator('a').getAttribute('href');
      expect(href).toMatch(/^\/_inbox\/messages\/\d+$/);
      expect(await page.getByText('No messages yet.').count()).toBe(0);

      // A hostile subject from another app arrives as text, not markup.
      await rt.inbox?.ingest(
        Buffer.from(
          'From: a@example.com\r\nTo: b@example.com\r\nSubject: <img src=x onerror=alert(1)>\r\n\r\nhi\r\n',
        ),
        { from: 'a@example.com', to: ['b@example.com'] },
      );
      const hostile = page.locator('ul.messages li', { hasText: 'b@example.com' });
      await hostile.waitFor({ timeout: 5000 });
      expect(await hostile.locator('.subject').textContent()).toContain(
        '<img src=x onerror=alert(1)>',
      );
      expect(await page.locator('ul.messages img').count()).toBe(0);
      expect(reloaded).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('refuses the event stream to another origin', async () => {
    const res = await fetch(`${baseUrl}/_inbox/api/events`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe('origin_refused');
  });
});
