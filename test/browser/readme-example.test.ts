// The README's example of testing a sign-up against Mailproof's inbox API, run as a real test so
// it cannot rot. The part between the "README example" markers is pasted into the README as is.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { type BrowserApp, startBrowserApp } from '../support/browser.ts';

let app: BrowserApp;
let browser: Browser;
let baseUrl: string;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  app = await startBrowserApp();
  ({ browser, baseUrl } = app);
});

afterAll(async () => {
  await app?.close();
});

beforeEach(async () => {
  context = await browser.newContext();
  page = await context.newPage();
});

afterEach(async () => {
  await context.close();
});

// README example: start
// Retried until the page a click led to shows it, for up to 10 s.
const expectHeading = (text: string) =>
  expect.poll(() => page.locator('h1').textContent(), { timeout: 10_000 }).toBe(text);

async function signUp(email: string) {
  await page.goto(`${baseUrl}/signup`);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill('correct horse battery staple');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expectHeading('Check your inbox');
  // The inbox API holds the request until the email arrives (at most `wait` ms).
  const to = encodeURIComponent(email);
  const res = await fetch(`${baseUrl}/_inbox/api/latest?to=${to}&wait=5000`);
  const { verification } = (await res.json()) as { verification: { url: string; code: string } };
  return verification;
}

it('confirms a sign-up by the emailed link', async () => {
  const { url } = await signUp(`link-${Date.now()}@example.com`);
  await page.goto(url);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expectHeading('Your email is confirmed');
});

it('confirms a sign-up by the 8-digit code', async () => {
  const email = `code-${Date.now()}@example.com`;
  const { code } = await signUp(email);
  await page.goto(`${baseUrl}/verify`);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expectHeading('Your email is confirmed');
});
// README example: end
