// §5: checks on each message, in the API and on the message page, and on every template.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageChecks } from '../../src/inbox/checks/index.ts';
import { composeMime } from '../../src/mail/transport.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a long enough passphrase here';

describe('message checks', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { RATE_LIMITS: 'off' } });
  });
  afterAll(async () => {
    await rt?.close();
  });

  async function ingest(html: string, text: string | undefined): Promise<number> {
    const raw = await composeMime({
      from: 'Other App <robot@other-app.test>',
      to: 'dev@example.com',
      subject: 'From another app',
      text: text as string,
      html,
      messageId: `<checks-${Math.random().toString(36).slice(2)}@other-app.test>`,
      provenance: { template: 'x', flow: 'x', requestId: null, outboxId: 'x', attempt: 1 },
    });
    const inbox = rt.inbox;
    if (!inbox) throw new Error('inbox disabled');
    return inbox.ingest(raw, { from: 'robot@other-app.test', to: ['dev@example.com'] });
  }

  it("the app's own verification email passes every check", async () => {
    const address = `checks-${Date.now()}@example.com`;
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email: address, password: PASSWORD },
    });
    expect(res.statusCode).toBe(202);
    const latest = await rt.app.inject({ url: `/_inbox/api/latest?to=${address}&wait=5000` });
    const { id } = latest.json() as { id: number };
    const detail = await rt.app.inject({ url: `/_inbox/api/messages/${id}` });
    expect(detail.statusCode).toBe(200);
    const checks = (detail.json() as { checks: MessageChecks }).checks;
    expect(checks.errors).toBe(0);
    expect(checks.items.filter((i) => i.level === 'error')).toEqual([]);
    const link = checks.links.find((l) => l.url.includes('/verify/'));
    expect(link).toMatchObject({ kind: 'app', level: 'ok', route: '/verify/:token' });
    expect(checks.css?.features.filter((f) => f.level === 'error')).toEqual([]);
    expect(checks.spam).toEqual({ status: 'not_configured' });
  });

  it('a message with a broken app link, no text part and unsupported CSS gets errors, shown on its page', async () => {
    const id = await ingest(
      '<!DOCTYPE html><html><body><div style="display:flex"><img src="https://cdn.example/x.png"><a href="http://mailproof.test/verfy/abc">Confirm</a> <a href="http://localhost:5000/x">dev</a></div></body></html>',
      undefined,
    );
    const detail = await rt.app.inject({ url: `/_inbox/api/messages/${id}` });
    const checks = (detail.json() as { checks: MessageChecks }).checks;
    const levels = Object.fromEntries(checks.items.map((i) => [i.id, i.level]));
    expect(levels).toMatchObject({
      'text-part': 'error',
      lang: 'error',
      'alt-text': 'error',
      css: 'error',
      links: 'error',
    });
    expect(checks.errors).toBeGreaterThanOrEqual(5);
    // BASE_URL is http://mailproof.test (not local): a localhost link is an error too.
    expect(checks.links.map((l) => [l.url, l.level])).toEqual([
      ['http://mailproof.test/verfy/abc', 'error'],
      ['http://localhost:5000/x', 'error'],
    ]);

    const page = await rt.app.inject({ url: `/_inbox/messages/${id}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<section class="checks" aria-labelledby="checks-title">/);
    expect(page.body).toContain('This app has no page at /verfy/abc.');
    expect(page.body).toMatch(/data-check="text-part"><span class="badge error">Error/);
    expect(page.body).toContain('display:flex');
    // The three widths, as radio buttons with labels.
    for (const w of ['phone', 'tablet', 'desktop']) {
      expect(page.body).toMatch(
        new RegExp(`<input type="radio" name="width-message" id="width-message-${w}"`),
      );
      expect(page.body).toContain(`for="width-message-${w}"`);
    }
  });

  it('GET /_inbox/api/templates returns every template with its checks, all passing', async () => {
    const res = await rt.app.inject({ url: '/_inbox/api/templates' });
    expect(res.statusCode).toBe(200);
    const { templates } = res.json() as {
      templates: Array<{
        name: string;
        subject: string;
        checks: MessageChecks;
        failures: string[];
      }>;
    };
    expect(templates.map((t) => t.name)).toEqual([
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
    ]);
    for (const t of templates) {
      expect(t.failures, t.name).toEqual([]);
      expect(t.checks.errors, t.name).toBe(0);
      expect(t.checks.items.find((i) => i.id === 'dark-mode')?.level, t.name).toBe('ok');
    }
    // Links into the app are resolved against its routes, e.g. /login in signup-existing.
    const existing = templates.find((t) => t.name === 'signup-existing');
    expect(existing?.checks.links.some((l) => l.route === '/login' && l.level === 'ok')).toBe(true);
  });

  it('the gallery shows each template at three widths with its checks', async () => {
    const page = await rt.app.inject({ url: '/_inbox/templates' });
    expect(page.statusCode).toBe(200);
    for (const name of ['verify-email', 'signup-existing', 'contact-verify', 'contact-delivery']) {
      expect(page.body).toContain(`aria-labelledby="checks-${name}"`);
      expect(page.body).toContain(`id="width-template-${name}-phone"`);
    }
    expect(page.body).not.toContain('class="badge error"');
  });
});
