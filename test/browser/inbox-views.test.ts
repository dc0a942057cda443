// The inbox message view and the template gallery in a real browser: the HTML part at phone,
// tablet and desktop width (with and without JavaScript), the checks, the page at phone width,
// and the screenshot of the message view that the README shows.

import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEmail } from '../../src/mail/render.ts';
import { templates } from '../../src/mail/templates/index.ts';
import { type BrowserApp, openPage, startBrowserApp } from '../support/browser.ts';

const PASSWORD = 'correct horse battery staple';
const SCREENSHOTS = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));
// Every run writes the screenshot under test-results/ (git-ignored); UPDATE_SCREENSHOTS=1 also
// writes the README's copy in docs/images/, which would otherwise change (times, codes) each run.
const DOCS_IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));
const SCREENSHOT = process.env.UPDATE_SCREENSHOTS
  ? `${DOCS_IMAGES}inbox-message.png`
  : `${SCREENSHOTS}inbox-message.png`;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const TEMPLATES = [
  'verify-email',
  'signup-existing',
  'contact-verify',
  'contact-delivery',
  'password-reset',
  'password-changed',
  'email-change-verify',
  'email-change-notice',
  'email-change-taken',
  'two-step-changed',
];
const WIDTH_LABELS = ['Phone (375 px)', 'Tablet (768 px)', 'Desktop'];
const CHECK_LEVELS = ['Error', 'Warning', 'Note', 'Pass'];
const PHONE = {
  viewport: { width: 375, height: 800 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

let app: BrowserApp;
/** The verification email of one sign-up, caught by the inbox. */
let email: string;
let messagePath: string;

beforeAll(async () => {
  app = await startBrowserApp();
  mkdirSync(SCREENSHOTS, { recursive: true });
  email = `views-${process.pid}@example.com`;
  const signup = await fetch(`${app.baseUrl}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(signup.status).toBe(202);
  messagePath = `/_inbox/messages/${(await app.rt.mailTo(email)).id}`;
});

afterAll(async () => {
  await app?.close();
});

/** Opens the message view and waits until the framed email has rendered. */
async function openMessage(page: Page): Promise<void> {
  await page.goto(messagePath);
  await emailLink(page).waitFor();
}

function emailLink(page: Page): Locator {
  return page.frameLocator('iframe.message-frame').getByRole('link', { name: 'Confirm my email' });
}

async function widthOf(locator: Locator): Promise<number> {
  return (await locator.boundingBox())?.width ?? -1;
}

/** Clicks a width label, as a person would, and returns the frame's rendered width. */
async function chooseWidth(preview: Locator, label: string): Promise<number> {
  await preview.locator('label', { hasText: label }).click();
  expect(await preview.getByLabel(label).isChecked()).toBe(true);
  return widthOf(preview.locator('iframe.message-frame'));
}

/**
 * How far the page itself scrolls sideways (the frame box may scroll inside it), and the outermost
 * elements that stick out. Measured against the viewport's width, not innerWidth: on a mobile
 * viewport innerWidth grows to fit whatever overflows.
 */
async function pageOverflow(page: Page): Promise<{ overflow: number; culprits: string[] }> {
  const { scrollWidth, culprits } = await page.evaluate((width) => {
    const sticksOut = (el: Element | null) =>
      el !== null && el.getBoundingClientRect().right > width + 1 && !el.closest('.frame-box');
    const outermost = [...document.body.querySelectorAll('*')].filter(
      (el) => sticksOut(el) && !sticksOut(el.parentElement),
    );
    return {
      scrollWidth: document.scrollingElement?.scrollWidth ?? 0,
      culprits: outermost.map((el) => {
        const path: string[] = [];
        for (
          let node: Element | null = el;
          node && node !== document.body;
          node = node.parentElement
        ) {
          path.unshift([node.localName, ...node.classList].join('.'));
        }
        return `${path.join(' > ')} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`;
      }),
    };
  }, PHONE.viewport.width);
  return { overflow: scrollWidth - PHONE.viewport.width, culprits: [...new Set(culprits)] };
}

async function expectNoPageOverflow(page: Page, when: string): Promise<void> {
  const { overflow, culprits } = await pageOverflow(page);
  expect(culprits, `elements wider than the phone ${when}`).toEqual([]);
  expect(overflow, `page overflow ${when}`).toBeLessThanOrEqual(1);
}

async function duplicateIds(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
    return ids.filter((id, i) => ids.indexOf(id) !== i);
  });
}

/** Every width radio has its own label, and the group is named by its legend. */
async function expectLabelledWidthSwitch(preview: Locator): Promise<void> {
  const group = preview.getByRole('group', { name: 'Width' });
  expect(await group.count()).toBe(1);
  expect((await group.locator('legend').textContent())?.trim()).toBe('Width');
  expect(await group.getByRole('radio').count()).toBe(WIDTH_LABELS.length);
  for (const label of WIDTH_LABELS) {
    const radio = preview.getByLabel(label, { exact: true });
    expect(await radio.count(), `one control labelled "${label}"`).toBe(1);
    expect(await radio.getAttribute('type')).toBe('radio');
  }
  expect(await preview.getByLabel('Desktop', { exact: true }).isChecked()).toBe(true);
}

function badgeText(section: Locator): Promise<string | null> {
  return section.locator('h2 .badge').textContent();
}

describe('inbox message view', () => {
  it.each([
    { javaScriptEnabled: true, name: 'with JavaScript' },
    { javaScriptEnabled: false, name: 'without JavaScript' },
  ])(
    'switches the HTML frame to 375 px, 768 px and full width by its labels, $name',
    async ({ javaScriptEnabled }) => {
      const { context, page, errors } = await openPage(app, {
        javaScriptEnabled,
        viewport: { width: 1280, height: 900 },
      });
      try {
        await page.goto('/_inbox');
        await page.locator('.messages a', { hasText: email }).click();
        await page.waitForURL(`${app.baseUrl}${messagePath}`);
        await emailLink(page).waitFor();

        const preview = page.locator('.preview');
        const container = await widthOf(preview.locator('.frame-box'));
        expect(container).toBeGreaterThan(768);
        expect(await widthOf(preview.locator('iframe.message-frame'))).toBe(container);

        expect(await chooseWidth(preview, 'Phone (375 px)')).toBe(375);
        expect(await chooseWidth(preview, 'Tablet (768 px)')).toBe(768);
        expect(await chooseWidth(preview, 'Desktop')).toBe(container);
        expect(await chooseWidth(preview, 'Phone (375 px)')).toBe(375);
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    },
  );

  it('frames the email itself, in a sandbox that only lets links open a new tab', async () => {
    const { context, page } = await openPage(app);
    try {
      await openMessage(page);
      const frame = page.locator('.preview iframe.message-frame');
      expect(await frame.count()).toBe(1);
      expect(await frame.getAttribute('sandbox')).toBe(
        'allow-popups allow-popups-to-escape-sandbox',
      );
      expect(await frame.getAttribute('title')).toBe('HTML part of the message');
      const href = await emailLink(page).getAttribute('href');
      expect(href?.startsWith(`${app.baseUrl}/verify/`)).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('keeps every email with a copyable address within a phone screen, whatever its token', async () => {
    // The address under the button is one unbroken word; a table cell once widened to fit it
    // (570-790 px at 375). A token without a hyphen is the worst case (nowhere to wrap).
    const { context, page } = await openPage(app, PHONE);
    try {
      for (const name of [
        'verify-email',
        'contact-verify',
        'password-reset',
        'email-change-verify',
      ] as const) {
        const sample = templates[name].sample(app.rt.ctx.branding) as { url: string };
        const url = sample.url.replace(/[^/]+$/, 'Q'.repeat(43));
        const { html } = renderEmail(name, { ...sample, url }, app.rt.ctx.branding);
        await page.setContent(html);
        const width = await page.evaluate(() => document.scrollingElement?.scrollWidth ?? 0);
        expect(width, name).toBeLessThanOrEqual(375);
        // It still reads, and copies, as the one address.
        const shown = await page.locator(`a[href="${url}"]`).last().textContent();
        expect(shown, name).toBe(url);
      }
    } finally {
      await context.close();
    }
  });

  it('opens a link clicked in the email in a new tab, and the preview stays', async () => {
    // Followed inside the frame, the app's page (frame-ancestors 'none') left an error page there.
    const { context, page } = await openPage(app);
    try {
      await openMessage(page);
      const href = await emailLink(page).getAttribute('href');
      const [tab] = await Promise.all([
        context.waitForEvent('page', { timeout: 10_000 }),
        emailLink(page).click(),
      ]);
      await tab.waitForLoadState();
      expect(tab.url()).toBe(href);
      expect(await tab.getByRole('button', { name: /Confirm/ }).count()).toBeGreaterThan(0);
      // The email is still in the frame, link and all.
      expect(await emailLink(page).isVisible()).toBe(true);
      expect(page.url()).toBe(`${app.baseUrl}${messagePath}`);
    } finally {
      await context.close();
    }
  });

  it('shows the checks, with text part, links, CSS and dark mode, and 0 errors', async () => {
    const { context, page } = await openPage(app);
    try {
      await openMessage(page);
      const checks = page.getByRole('region', { name: /^Checks/ });
      expect(await checks.count()).toBe(1);
      expect(await checks.evaluate((el) => el.matches('section.checks'))).toBe(true);
      expect(await checks.isVisible()).toBe(true);
      expect(await badgeText(checks)).toMatch(/^0 errors/);
      expect(await checks.locator('li.check.error').count()).toBe(0);

      for (const id of ['text-part', 'links', 'css', 'dark-mode']) {
        const item = checks.locator(`li.check[data-check="${id}"]`);
        expect(await item.count(), `check ${id}`).toBe(1);
        expect(await item.isVisible()).toBe(true);
      }
      const levels = await checks.locator('li.check > .badge').allTextContents();
      expect(levels.length).toBeGreaterThanOrEqual(4);
      for (const level of levels) expect(CHECK_LEVELS).toContain(level.trim());

      // The link list is collapsed until asked for; it holds the verification link, unbroken.
      const links = checks.locator('details.check-more', { hasText: /^Links \(\d+\)/ });
      const linkList = links.locator('.link-list');
      expect(await linkList.isVisible()).toBe(false);
      await links.locator('summary').click();
      await linkList.waitFor();
      expect(await linkList.locator('.link-url').allTextContents()).toContainEqual(
        expect.stringMatching(new RegExp(`^${app.baseUrl}/verify/`)),
      );
      expect(await linkList.locator('.check.error').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('fits a 375 px wide page: only the frame box scrolls sideways, never the page', async () => {
    const { context, page } = await openPage(app, PHONE);
    try {
      await openMessage(page);
      await page.screenshot({ path: `${SCREENSHOTS}inbox-message-phone.png`, fullPage: true });
      const preview = page.locator('.preview');
      for (const label of WIDTH_LABELS) {
        await preview.locator('label', { hasText: label }).click();
        expect(await preview.getByLabel(label).isChecked()).toBe(true);
        await expectNoPageOverflow(page, `with "${label}"`);
      }
      // At tablet width the frame is wider than the phone: its box scrolls, the page does not.
      await preview.locator('label', { hasText: 'Tablet (768 px)' }).click();
      expect(await widthOf(preview.locator('iframe.message-frame'))).toBe(768);
      const box = preview.locator('.frame-box');
      expect(await box.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
      expect(await widthOf(box)).toBeLessThanOrEqual(PHONE.viewport.width);
    } finally {
      await context.close();
    }
  });

  it('labels every width radio, names the width group by its legend, and repeats no id', async () => {
    const { context, page } = await openPage(app);
    try {
      await openMessage(page);
      await expectLabelledWidthSwitch(page.locator('.preview'));
      expect(await duplicateIds(page)).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('writes a desktop screenshot of the message view (the README shows it)', async () => {
    const { context, page } = await openPage(app, {
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
    });
    try {
      await openMessage(page);
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(statSync(SCREENSHOT).size).toBeGreaterThan(10 * 1024);
      expect(readFileSync(SCREENSHOT).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    } finally {
      await context.close();
    }
  });
});

describe('inbox list', () => {
  it('labels the search box with visible text, at phone width without overflow', async () => {
    const { context, page } = await openPage(app, PHONE);
    try {
      await page.goto('/_inbox');
      const label = page.locator('label[for="inbox-q"]');
      expect(await label.textContent()).toBe('Search messages');
      expect(await label.isVisible()).toBe(true);
      expect((await label.boundingBox())?.width ?? 0).toBeGreaterThan(50);
      expect(await page.getByLabel('Search messages').getAttribute('type')).toBe('search');
      const overflow = await page.evaluate(
        () => (document.scrollingElement?.scrollWidth ?? 0) - window.innerWidth,
      );
      expect(overflow).toBeLessThanOrEqual(0);
    } finally {
      await context.close();
    }
  });
});

describe('template gallery', () => {
  it('shows one preview and one checks section per template, each with 0 errors', async () => {
    const { context, page, errors } = await openPage(app, {
      viewport: { width: 1280, height: 900 },
    });
    try {
      await page.goto('/_inbox/templates');
      const articles = page.locator('article.template');
      expect(await articles.locator('h2 code').allTextContents()).toEqual(TEMPLATES);
      for (const name of TEMPLATES) {
        const article = articles.filter({ has: page.locator(`h2 code:text-is("${name}")`) });
        const preview = article.locator('.preview');
        expect(await preview.count(), `${name}: previews`).toBe(1);
        expect(await article.locator('section.checks').count(), `${name}: checks`).toBe(1);
        expect(await badgeText(article.locator('section.checks')), name).toMatch(/^0 errors/);
        const frame = preview.locator('iframe.message-frame');
        expect(await frame.getAttribute('sandbox')).toBe(
          'allow-popups allow-popups-to-escape-sandbox',
        );
        expect(await frame.getAttribute('src')).toBe(`/_inbox/templates/${name}/html`);
        await expectLabelledWidthSwitch(preview);
      }
      expect(await duplicateIds(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('fits a 375 px wide page: nothing but the frame boxes scrolls sideways', async () => {
    const { context, page } = await openPage(app, PHONE);
    try {
      await page.goto('/_inbox/templates');
      await page.screenshot({ path: `${SCREENSHOTS}inbox-templates-phone.png`, fullPage: true });
      await expectNoPageOverflow(page, 'on the gallery');
    } finally {
      await context.close();
    }
  });

  it('switches each template’s width on its own', async () => {
    const { context, page } = await openPage(app, { viewport: { width: 1280, height: 900 } });
    try {
      await page.goto('/_inbox/templates');
      const previews = page.locator('article.template .preview');
      const first = previews.nth(0);
      const second = previews.nth(1);
      const desktop = await widthOf(second.locator('iframe.message-frame'));
      expect(await chooseWidth(first, 'Phone (375 px)')).toBe(375);
      expect(await widthOf(second.locator('iframe.message-frame'))).toBe(desktop);
      expect(await chooseWidth(second, 'Tablet (768 px)')).toBe(768);
      expect(await first.getByLabel('Phone (375 px)').isChecked()).toBe(true);
    } finally {
      await context.close();
    }
  });
});
