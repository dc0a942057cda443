import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templates } from '../../src/mail/templates/index.ts';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

describe('template gallery', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  it('shows every template with sample data, in sandboxed frames, and sends nothing', async () => {
    const before = await rt.db.kysely.selectFrom('outbox').select('id').execute();
    const page = await rt.app.inject({ url: '/_inbox/templates' });
    expect(page.statusCode).toBe(200);
    for (const name of Object.keys(templates)) {
      expect(page.body).toContain(`<code>${name}</code>`);
      expect(page.body).toContain(`src="/_inbox/templates/${name}/html"`);
      const html = await rt.app.inject({ url: `/_inbox/templates/${name}/html` });
      expect(html.statusCode).toBe(200);
      expect(html.headers['content-security-policy']).toMatch(/sandbox/);
      expect(html.body).toMatch(/^<!DOCTYPE html><html lang="en"/);
    }
    expect(page.body).toContain('Confirm your email address for Mailproof');
    expect(page.body).toMatch(/<iframe[^>]*sandbox/);
    expect((await rt.app.inject({ url: '/_inbox/templates/nope/html' })).statusCode).toBe(404);
    expect((await rt.app.inject({ url: '/_inbox/templates/__proto__/html' })).statusCode).toBe(404);
    const after = await rt.db.kysely.selectFrom('outbox').select('id').execute();
    expect(after).toEqual(before);
    expect(rt.inbox?.count()).toBe(0);
  });

  it('is linked from the inbox', async () => {
    expect((await rt.app.inject({ url: '/_inbox' })).body).toContain('href="/_inbox/templates"');
  });
});
