// Browser end-to-end tests: the real app on a real port, driven by Debian's Chromium.
// Covers the sign-up journey (link and code), a no-JavaScript run, phone width,
// accessibility basics of the forms, and the inbox's sandboxed message frame.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeMime } from '../../src/mail/transport.ts';
import { type BrowserApp, startBrowserApp } from '../support/browser.ts';
import type { TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'correct horse battery staple';
const SCREENSHOTS = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

let rt: TestRuntime;
let browser: Browser;
let baseUrl: string;
let seq = 0;

/** A fresh address per journey, so per-address rate limits never meet. */
function newAddress(label: string): string {
  seq += 1;
  return `${label}-${seq}-${process.pid}@example.com`;
}

/** Opens a context whose console errors (CSP violations, script errors) are collected. */
async function openContext(
  options: Parameters<Browser['newContext']>[0] = {},
): Promise<{ context: BrowserContext; page: Page; consoleErrors: string[] }> {
  const context = await browser.newContext({ baseURL: baseUrl, ...options });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      consoleErrors.push(`${message.text()} (${message.location().url})`);
    }
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  return { context, page, consoleErrors };
}

async function h1Text(page: Page): Promise<string> {
  return ((await page.locator('h1').first().textContent()) ?? '').trim();
}

async function signUpInBrowser(page: Page, email: string): Promise<void> {
  await page.goto('/signup');
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('heading', { level: 1, name: 'Check your inbox' }).waitFor();
}

async function logInInBrowser(page: Page, email: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${baseUrl}/account`);
  await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
}

/** Opens the newest inbox message to `email` from the inbox list, as a person would. */
async function openInboxMessage(page: Page, email: string): Promise<void> {
  await rt.mailTo(email); // the outbox worker has delivered it
  await page.goto('/_inbox');
  await page.locator('.messages a', { hasText: email }).first().click();
  await page.waitForURL(/\/_inbox\/messages\/\d+$/);
  await page.locator('.verification-link').waitFor();
}

/** Every visible form control has exactly one <label for=id>; returns the ids missing one. */
async function unlabelledInputs(page: Page): Promise<string[]> {
  const inputs = page.locator('input:not([type="hidden"]), select, textarea');
  const missing: string[] = [];
  for (let i = 0; i < (await inputs.count()); i += 1) {
    const input = inputs.nth(i);
    const id = await input.getAttribute('id');
    const name = (await input.getAttribute('name')) ?? `#${i}`;
    if (!id) {
      missing.push(`${name} (no id)`);
      continue;
    }
    const labels = await page.locator(`label[for="${id}"]`).count();
    const labelText = labels === 1 ? await page.locator(`label[for="${id}"]`).textContent() : '';
    if (labels !== 1 || !labelText?.trim()) missing.push(id);
  }
  return missing;
}

async function scrollWidth(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth');
}

async function expectAccessibleBasics(page: Page): Promise<void> {
  expect(await page.locator('h1').count(), `one h1 on ${page.url()}`).toBe(1);
  expect(await page.locator('html').getAttribute('lang')).toMatch(/^[a-z]{2}/);
  expect(await unlabelledInputs(page), `unlabelled inputs on ${page.url()}`).toEqual([]);
}

/** The field is marked invalid and described by an error shown beside it, in the same field. */
async function expectFieldError(page: Page, inputId: string, text: RegExp): Promise<void> {
  const input = page.locator(`#${inputId}`);
  expect(await input.getAttribute('aria-invalid')).toBe('true');
  const describedBy = ((await input.getAttribute('aria-describedby')) ?? '').split(/\s+/);
  const texts: string[] = [];
  for (const id of describedBy.filter(Boolean)) {
    const described = page.locator(`[id="${id}"]`);
    expect(await described.count(), `#${id} referenced by aria-describedby exists`).toBe(1);
    texts.push(((await described.textContent()) ?? '').trim());
  }
  expect(texts.join(' | ')).toMatch(text);
  // "Next to the field": the error and the input share their .field wrapper.
  const field = page.locator('.field', { has: input });
  expect(await field.locator('.error').textContent()).toMatch(text);
}

let app: BrowserApp;

beforeAll(async () => {
  app = await startBrowserApp();
  ({ rt, browser, baseUrl } = app);
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await app?.close();
});

describe('sign-up in a real browser', () => {
  it('signs up, confirms by the emailed link and logs in to a confirmed account', async () => {
    const { context, page, consoleErrors } = await openContext();
    const email = newAddress('link');
    try {
      await signUpInBrowser(page, email);
      expect(await page.getByText(email).count()).toBeGreaterThan(0);

      await openInboxMessage(page, email);
      const link = page.locator('a.verification-link');
      const href = (await link.getAttribute('href')) ?? '';
      expect(href.startsWith(`${baseUrl}/verify/`)).toBe(true);
      await link.click();
      await page.waitForURL(href);
      expect(await h1Text(page)).toBe('Confirm your email address');

      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your email is confirmed' }).waitFor();

      await logInInBrowser(page, email);
      expect(await page.getByRole('status').textContent()).toContain('You are logged in.');
      expect(((await page.locator('.details .badge').textContent()) ?? '').trim()).toBe(
        'Confirmed',
      );
      expect(await page.locator('.details dd').first().textContent()).toBe(email);
      expect(consoleErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('works with JavaScript disabled, confirming by the 8-digit code', async () => {
    const { context, page } = await openContext({ javaScriptEnabled: false });
    const email = newAddress('nojs');
    try {
      await signUpInBrowser(page, email);
      const codeHref = await page
        .getByRole('link', { name: 'Enter the code' })
        .getAttribute('href');
      expect(codeHref).toBe(`/verify?email=${encodeURIComponent(email)}`);

      await openInboxMessage(page, email);
      const code = ((await page.locator('.verification-code').textContent()) ?? '').trim();
      expect(code).toMatch(/^\d{8}$/);

      await page.goto(codeHref ?? '/verify');
      expect(await page.getByLabel('Email address').inputValue()).toBe(email);
      await page.getByLabel('Code', { exact: true }).fill(code);
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your email is confirmed' }).waitFor();

      // The outcome page offers the next step; follow it rather than typing a URL.
      await page.getByRole('link', { name: 'Log in' }).last().click();
      await page.waitForURL(`${baseUrl}/login`);
      await logInInBrowser(page, email);
      expect(((await page.locator('.details .badge').textContent()) ?? '').trim()).toBe(
        'Confirmed',
      );
    } finally {
      await context.close();
    }
  });
});

describe('phone width (375 × 740)', () => {
  it('has no horizontal scroll on /signup and /account, and labels every input', async () => {
    const { context, page } = await openContext({
      viewport: { width: 375, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    const email = newAddress('phone');
    try {
      await page.goto('/signup');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.screenshot({ path: `${SCREENSHOTS}signup-phone.png`, fullPage: true });

      // The error state is the widest the form gets.
      await page.getByLabel('Email address').fill('not an email');
      await page.getByLabel('Password').fill('short');
      await page.getByRole('button', { name: 'Sign up' }).click();
      await page.locator('.error-summary').waitFor();
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      await page.screenshot({ path: `${SCREENSHOTS}signup-phone-error.png`, fullPage: true });

      await signUpInBrowser(page, email);
      // Unconfirmed users may log in (the default); their account page carries a banner.
      await logInInBrowser(page, email);
      expect(await page.locator('.details .badge').textContent()).toBe('Waiting for confirmation');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.screenshot({
        path: `${SCREENSHOTS}account-unconfirmed-phone.png`,
        fullPage: true,
      });

      await openInboxMessage(page, email);
      await page.screenshot({ path: `${SCREENSHOTS}inbox-message.png`, fullPage: true });
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      const messageUrl = page.url();

      // The inbox list: search box and its button share one row, nothing overflows.
      await page.goto('/_inbox');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      expect(await unlabelledInputs(page)).toEqual([]);
      const searchBox = await page.getByLabel('Search messages').boundingBox();
      const searchButton = await page.getByRole('button', { name: 'Search' }).boundingBox();
      expect(Math.abs((searchBox?.y ?? 0) - (searchButton?.y ?? -100))).toBeLessThan(8);
      await page.screenshot({ path: `${SCREENSHOTS}inbox-list-phone.png`, fullPage: true });
      await page.goto(messageUrl);

      await page.locator('a.verification-link').click();
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your email is confirmed' }).waitFor();
      await page.goto('/account');
      expect(await page.locator('.details .badge').textContent()).toBe('Confirmed');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(375);
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.screenshot({ path: `${SCREENSHOTS}account-phone.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });
});

describe('accessibility basics', () => {
  it('/signup: one h1, labelled inputs, lang, and an invalid email is flagged at the field', async () => {
    const { context, page } = await openContext();
    try {
      await page.goto('/signup');
      await expectAccessibleBasics(page);
      await page.getByLabel('Email address').fill('not-an-email');
      await page.getByLabel('Password').fill(PASSWORD);
      const response = page.waitForResponse((r) => r.request().method() === 'POST');
      await page.getByRole('button', { name: 'Sign up' }).click();
      expect((await response).status()).toBe(400);
      await page.locator('.error-summary').waitFor();
      await expectAccessibleBasics(page);
      await expectFieldError(page, 'field-email', /valid email address/);
      // The summary links to the field, and the typed value is kept.
      expect(await page.locator('.error-summary a').getAttribute('href')).toBe('#field-email');
      expect(await page.getByLabel('Email address').inputValue()).toBe('not-an-email');
      // The password field keeps its hint in aria-describedby.
      expect(await page.locator('#field-password').getAttribute('aria-describedby')).toBe(
        'field-password-hint',
      );
    } finally {
      await context.close();
    }
  });

  it('/login: one h1, labelled inputs, lang, and a failed login marks the fields', async () => {
    const { context, page } = await openContext();
    try {
      await page.goto('/login');
      await expectAccessibleBasics(page);
      await page.getByLabel('Email address').fill('not-an-email');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').waitFor();
      await expectAccessibleBasics(page);
      const email = page.locator('#field-email');
      expect(await email.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await email.getAttribute('aria-describedby')) ?? '';
      expect(describedBy).not.toBe('');
      expect(await page.locator(`[id="${describedBy}"]`).textContent()).toMatch(
        /Wrong email address or password/,
      );
      expect(await page.locator('#field-password').getAttribute('aria-describedby')).toBe(
        describedBy,
      );
    } finally {
      await context.close();
    }
  });

  it('/verify: one h1, labelled inputs, lang, and an invalid email is flagged at the field', async () => {
    const { context, page } = await openContext();
    try {
      await page.goto('/verify');
      await expectAccessibleBasics(page);
      await page.getByLabel('Email address').fill('nobody at example');
      await page.getByLabel('Code', { exact: true }).fill('1234 5678');
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.locator('.error-summary').waitFor();
      await expectAccessibleBasics(page);
      await expectFieldError(page, 'field-email', /email address the code was sent to/);
      // The valid code field is not flagged; it keeps only its hint.
      expect(await page.locator('#field-code').getAttribute('aria-invalid')).toBeNull();
      expect(await page.locator('#field-code').getAttribute('aria-describedby')).toBe(
        'field-code-hint',
      );
    } finally {
      await context.close();
    }
  });

  it('the confirm page: one h1, lang, a labelled Confirm button, and GET changes nothing', async () => {
    const email = newAddress('a11y');
    const signup = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email, password: PASSWORD },
    });
    expect(signup.statusCode).toBe(202);
    const mail = await rt.mailTo(email);
    const { context, page } = await openContext();
    try {
      await page.goto(mail.verification.url ?? '');
      await expectAccessibleBasics(page);
      expect(await h1Text(page)).toBe('Confirm your email address');
      // Only the hidden CSRF field: nothing to label, one named button.
      expect(await page.locator('input:not([type="hidden"])').count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Confirm' }).count()).toBe(1);
      // Opening the link twice (a mail scanner, then the person) still shows the confirm page.
      await page.reload();
      expect(await h1Text(page)).toBe('Confirm your email address');
      const me = await rt.app.inject({
        method: 'POST',
        url: '/api/login',
        payload: { email, password: PASSWORD },
      });
      expect(me.statusCode).toBe(200);
      const cookie = me.cookies.find((c) => c.name === 'mp_session');
      const who = await rt.app.inject({
        method: 'GET',
        url: '/api/me',
        cookies: { mp_session: cookie?.value ?? '' },
      });
      expect(who.json()).toMatchObject({ emailVerified: false });
    } finally {
      await context.close();
    }
  });
});

describe('inbox message view', () => {
  it('shows the HTML in a sandboxed frame whose CSP blocks scripts', async () => {
    const email = newAddress('frame');
    const { context, page, consoleErrors } = await openContext();
    try {
      await signUpInBrowser(page, email);
      await openInboxMessage(page, email);
      const id = /\/_inbox\/messages\/(\d+)$/.exec(page.url())?.[1];
      const frame = page.locator('iframe.message-frame');
      expect(await frame.getAttribute('sandbox')).toBe(
        'allow-popups allow-popups-to-escape-sandbox',
      );
      expect(await frame.getAttribute('src')).toBe(`/_inbox/messages/${id}/html`);
      expect(await frame.getAttribute('title')).toBeTruthy();
      // The email itself renders in the frame.
      await page
        .frameLocator('iframe.message-frame')
        .getByRole('link', { name: 'Confirm my email' })
        .waitFor();

      const htmlResponse = await page.request.get(`/_inbox/messages/${id}/html`);
      const csp = htmlResponse.headers()['content-security-policy'] ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('script-src');
      expect(csp).toMatch(/(^|;\s*)sandbox allow-popups allow-popups-to-escape-sandbox(\s*;|$)/);
      expect(consoleErrors).toEqual([]);

      // A hostile message: its script must not run, framed or opened on its own.
      const raw = await composeMime({
        from: 'Attacker <evil@example.net>',
        to: email,
        subject: 'Hostile HTML',
        html: '<p id="marker">untouched</p><script>document.getElementById("marker").textContent = "script ran"</script><img src="x" onerror="document.title=\'pwned\'">',
        text: 'Hostile HTML',
        messageId: `<hostile-${process.pid}@example.net>`,
        provenance: { template: 'test', flow: 'test', requestId: null, outboxId: 'x', attempt: 1 },
      });
      const hostileId = await rt.inbox?.ingest(raw, { from: 'evil@example.net', to: [email] });
      const hostileHtml = await page.request.get(`/_inbox/messages/${hostileId}/html`);
      expect(await hostileHtml.text()).toContain('<script>'); // served as is; the browser must block it
      await page.goto(`/_inbox/messages/${hostileId}`);
      const framed = page.frameLocator('iframe.message-frame').locator('#marker');
      await framed.waitFor();
      expect(await framed.textContent()).toBe('untouched');

      await page.goto(`/_inbox/messages/${hostileId}/html`);
      expect(await page.locator('#marker').textContent()).toBe('untouched');
      expect(await page.title()).not.toBe('pwned');
      expect(await page.evaluate<string>('document.title')).not.toBe('pwned');
    } finally {
      await context.close();
    }
  });
});
