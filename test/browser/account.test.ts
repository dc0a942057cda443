// The account lifecycle in a real browser, reading the mail through the inbox's API as a test
// suite of a Mailproof user would: password reset (without JavaScript), and a change of email
// confirmed by the code on the account page and by the emailed link.
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
const NEW_PASSWORD = 'violet anchor meadow lantern';

let app: BrowserApp;
let seq = 0;

function newAddress(label: string): string {
  seq += 1;
  return `${label}-${seq}-${process.pid}@example.com`;
}

beforeAll(async () => {
  app = await startBrowserApp();
});
afterAll(async () => {
  await app?.close();
});

const latestMail = (to: string, subject: RegExp) => latestMailOn(app, to, subject);
const confirmedAccount = (email: string) => confirmedAccountOn(app, email, PASSWORD);

async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
}

async function h1(page: Page): Promise<string> {
  return ((await page.locator('h1').first().textContent()) ?? '').trim();
}

describe('password reset in a browser', () => {
  it('from the login page to a new password, without JavaScript', async () => {
    const email = newAddress('reset');
    await confirmedAccount(email);
    const { context, page } = await openPage(app, { javaScriptEnabled: false });
    try {
      await page.goto('/login');
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.waitForURL(`${app.baseUrl}/forgot`);
      await page.getByLabel('Email address').fill(email);
      await page.getByRole('button', { name: 'Send the link' }).click();
      await page.getByRole('heading', { level: 1, name: 'Check your inbox' }).waitFor();

      const { verification } = await latestMail(email, /Reset your password/);
      expect(verification.url).toMatch(new RegExp(`^${app.baseUrl}/reset/[A-Za-z0-9_-]{43}$`));
      const response = await page.goto(verification.url ?? '');
      expect(response?.headers()['referrer-policy']).toBe('no-referrer');
      expect(response?.headers()['cache-control']).toBe('no-store');
      expect(await h1(page)).toBe('Choose a new password');
      await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Set the new password' }).click();
      await page
        .getByRole('heading', { level: 1, name: 'Your password has been changed' })
        .waitFor();

      const notice = await latestMail(email, /password was changed/);
      expect(notice.verification.code).toBeNull();

      // The link was single-use.
      await page.goto(verification.url ?? '');
      expect(await h1(page)).toBe('This link was already used');

      await page.getByRole('link', { name: 'Ask for a new link' }).waitFor();
      await logIn(page, email, NEW_PASSWORD);
      expect(await page.locator('.details dd').first().textContent()).toBe(email);
    } finally {
      await context.close();
    }
  });
});

describe('change of email in a browser', () => {
  it('confirmed with the code typed on the account page, then with the emailed link', async () => {
    const email = newAddress('change');
    await confirmedAccount(email);
    const { context, page, errors } = await openPage(app);
    try {
      await logIn(page, email, PASSWORD);
      const section = page.locator('#change-email');
      const first = newAddress('changed');
      await section.getByLabel('New email address').fill(first);
      await section.getByLabel('Current password').fill(PASSWORD);
      await section.getByRole('button', { name: 'Send a confirmation link' }).click();
      await page.getByText(`We sent a link and a code to ${first}.`).first().waitFor();

      // The old address is told, with a way to secure the account.
      const notice = await latestMail(email, /change the email address/);
      expect(notice.subject).toMatch(/request to change the email address/);

      const { verification } = await latestMail(first, /Confirm your new email address/);
      expect(verification.code).toMatch(/^\d{8}$/);
      await section.getByLabel('Code').fill(verification.code ?? '');
      await section.getByRole('button', { name: 'Confirm the new address' }).click();
      await page.getByText(`Your email address is now ${first}.`).waitFor();
      expect(await page.locator('.details dd').first().textContent()).toBe(first);

      // Again, confirmed by the link this time, in a browser that is not logged in.
      const second = newAddress('changed-again');
      await section.getByLabel('New email address').fill(second);
      await section.getByLabel('Current password').fill(PASSWORD);
      await section.getByRole('button', { name: 'Send a confirmation link' }).click();
      const link = (await latestMail(second, /Confirm your new email address/)).verification.url;
      expect(link).toMatch(new RegExp(`^${app.baseUrl}/account/email/confirm/`));

      const other = await openPage(app);
      try {
        const response = await other.page.goto(link ?? '');
        expect(response?.headers()['referrer-policy']).toBe('no-referrer');
        expect(await h1(other.page)).toBe('Confirm your new email address');
        await other.page.getByRole('button', { name: 'Confirm' }).click();
        await other.page
          .getByRole('heading', { level: 1, name: 'Your email address has changed' })
          .waitFor();
        expect(other.errors).toEqual([]);
      } finally {
        await other.context.close();
      }

      await page.goto('/account');
      expect(await page.locator('.details dd').first().textContent()).toBe(second);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('lists the sessions and logs out everywhere after the password is typed again', async () => {
    const email = newAddress('sessions');
    await confirmedAccount(email);
    const one = await openPage(app);
    const two = await openPage(app);
    try {
      await logIn(one.page, email, PASSWORD);
      await logIn(two.page, email, PASSWORD);
      await one.page.goto('/account');
      const sessions = one.page.locator('#sessions');
      expect(await sessions.locator('li').count()).toBe(2);
      expect(await sessions.locator('li', { hasText: '(this device)' }).count()).toBe(1);
      await sessions.getByLabel('Current password').fill(PASSWORD);
      await sessions.getByRole('button', { name: 'Log out everywhere' }).click();
      await one.page.waitForURL(`${app.baseUrl}/login`);
      await one.page.getByText('You are logged out everywhere.').waitFor();
      await two.page.goto('/account');
      await two.page.waitForURL(`${app.baseUrl}/login`);
    } finally {
      await one.context.close();
      await two.context.close();
    }
  });
});
