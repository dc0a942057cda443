// Two-step sign-in in a real browser at phone width (375 px): set it up from the account page by
// reading the typed secret off the page into an authenticator (otpauth here), save the recovery
// codes, log out, and log in again with the password and a code.
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserApp,
  confirmedAccount as confirmedAccountOn,
  latestMail as latestMailOn,
  openPage,
  startBrowserApp,
} from '../support/browser.ts';

const PASSWORD = 'correct horse battery staple';
const PHONE = { width: 375, height: 812 };

let app: BrowserApp;

beforeAll(async () => {
  app = await startBrowserApp();
});
afterAll(async () => {
  await app?.close();
});

const latestMail = (to: string, subject: RegExp) => latestMailOn(app, to, subject);
const confirmedAccount = (email: string) => confirmedAccountOn(app, email, PASSWORD);

/** What the phone's authenticator shows: the server's clock is the test runtime's. */
function authenticatorCode(secret: string): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: app.rt.clock.now() });
}

/** Nothing wider than the phone's screen: no sideways scrolling. */
async function expectFitsWidth(page: Page) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(PHONE.width);
}

describe('two-step sign-in in a browser', () => {
  it('is set up from the account page on a phone, and then asked for at login', async () => {
    const email = `two-step-${process.pid}@example.com`;
    await confirmedAccount(email);
    const { context, page, errors } = await openPage(app, { viewport: PHONE });
    try {
      await page.goto('/login');
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
      const section = page.locator('#two-step');
      expect(await section.textContent()).toContain('Off');
      await section.getByRole('button', { name: 'Set up two-step sign-in' }).click();

      await page.getByRole('heading', { level: 1, name: 'Set up two-step sign-in' }).waitFor();
      const qr = page.getByRole('img', { name: /QR code/ });
      const box = await qr.boundingBox();
      expect(box?.width).toBeGreaterThan(120);
      expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(PHONE.width);
      await expectFitsWidth(page);
      // The app is given the secret as typed from the page, spaces and all.
      const typed = (await page.locator('#two-step-secret').textContent()) ?? '';
      const secret = typed.replace(/\s+/g, '');
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);

      await page.getByLabel('Current password').fill(PASSWORD);
      await page.getByLabel('Code from your authenticator app').fill(authenticatorCode(secret));
      await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
      await page.getByRole('heading', { level: 1, name: /save your recovery codes/ }).waitFor();
      const codes = await page.locator('.recovery-codes code').allTextContents();
      expect(codes).toHaveLength(10);
      await expectFitsWidth(page);
      await page.getByRole('link', { name: 'I have saved them' }).click();
      await page.getByText('10 recovery codes left.').waitFor();
      await latestMail(email, /Two-step sign-in was turned on/);

      await page.locator('.site-header').getByRole('button', { name: 'Log out' }).click();
      await page.getByText('You are logged out.').waitFor();

      await page.goto('/login');
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Enter your code' }).waitFor();
      expect(page.url()).toBe(`${app.baseUrl}/login/two-step`);
      await expectFitsWidth(page);
      // The code that turned it on was used: the phone shows the next one 30 seconds later.
      app.rt.clock.advance(30_000);
      await page.getByLabel('Code from your authenticator app').fill(authenticatorCode(secret));
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
      await page.getByText('You are logged in.').waitFor();
      expect(await page.locator('.details dd').first().textContent()).toBe(email);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
