// The inbox list updates live (Server-Sent Events) when a message arrives, without a reload.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserApp, startBrowserApp } from '../support/browser.ts';
import type { TestRuntime } from '../support/runtime.ts';

let app: BrowserApp;
let rt: TestRuntime;
let browser: Browser;
let baseUrl: string;

beforeAll(async () => {
  app = await startBrowserApp();
  ({ rt, browser, baseUrl } = app);
});

afterAll(async () => {
  await app?.close();
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
