// Browser end-to-end test of the verified contact form (§3): the real app on a real port, driven
// by Debian's Chromium. Runs in the sqlite project only (test/browser is excluded from postgres and mariadb).
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

describe('the contact form in a real browser', () => {
  it('sends a message, confirms it from the emailed link and delivers it to the owner', async () => {
    const owner = `owner@${new URL(baseUrl).hostname}`;
    expect(rt.config.contact.to).toBe(owner);
    const email = `contact-${process.pid}@example.com`;
    const name = 'Ada <b>Lovelace</b>';
    const message = 'Hello,\nI would like to know more about <script>plans</script>.';
    const context = await browser.newContext({ baseURL: baseUrl });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    try {
      await page.goto('/contact');
      expect(await page.locator('h1').textContent()).toBe('Contact us');
      // The honeypot is in the form but out of sight and out of the accessibility tree.
      expect(await page.locator('#field-website').count()).toBe(1);
      const box = await page.locator('#field-website').boundingBox();
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(0);
      expect(await page.getByRole('textbox', { name: 'Leave this field empty' }).count()).toBe(0);
      expect(await page.locator('#field-website').getAttribute('tabindex')).toBe('-1');
      await page.getByLabel('Your name').fill(name);
      await page.getByLabel('Your email address').fill(email);
      await page.getByLabel('Message').fill(message);
      await page.getByRole('button', { name: 'Send' }).click();
      await page
        .getByRole('heading', { level: 1, name: 'One more step: confirm your address' })
        .waitFor();
      expect(await page.getByText(email).count()).toBeGreaterThan(0);
      // Nothing goes to the owner before the sender confirms.
      const pending = await rt.db.kysely
        .selectFrom('contact_messages')
        .select(['status', 'message'])
        .where('email_normalized', '=', email)
        .execute();
      expect(pending).toEqual([{ status: 'pending', message }]);

      await rt.mailTo(email); // the outbox worker has delivered the verification message
      expect(rt.inbox?.list({ to: owner })).toEqual([]);
      await page.goto('/_inbox');
      await page.locator('.messages a', { hasText: email }).first().click();
      await page.waitForURL(/\/_inbox\/messages\/\d+$/);
      const link = page.locator('a.verification-link');
      const href = (await link.getAttribute('href')) ?? '';
      expect(href.startsWith(`${baseUrl}/contact/confirm/`)).toBe(true);
      await link.click();
      await page.waitForURL(href);

      await page.getByRole('heading', { level: 1, name: 'Send your message?' }).waitFor();
      // The summary shows what was typed, as text.
      expect(await page.locator('.details dd').first().textContent()).toBe(`${name} (${email})`);
      expect(await page.locator('.message-body').textContent()).toBe(message);
      expect(await page.locator('.details b, .details script').count()).toBe(0);
      await page.getByRole('button', { name: 'Confirm and send' }).click();
      await page.getByRole('heading', { level: 1, name: /Thank you/ }).waitFor();

      // A name holding markup never reaches a header (SPEC §3): the subject names the address.
      const delivered = await rt.mailTo(owner);
      expect(delivered.subject).toBe(`[Mailproof] Contact form: message from ${email}`);
      await page.goto('/_inbox');
      const item = page.locator('.messages a', { hasText: owner });
      expect(await item.count()).toBe(1);
      expect(await item.locator('.subject').textContent()).toContain(
        `Contact form: message from ${email}`,
      );
      await item.click();
      await page.waitForURL(/\/_inbox\/messages\/\d+$/);
      expect(await page.locator('h1').textContent()).toBe(
        `[Mailproof] Contact form: message from ${email}`,
      );
      const frame = page.frameLocator('iframe.message-frame');
      await frame.getByText('I would like to know more about <script>plans</script>.').waitFor();
      expect(await frame.locator('script').count()).toBe(0);
      expect(consoleErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
