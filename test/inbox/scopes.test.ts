// Per-test scopes: a test lists and deletes only its own messages, so parallel tests never collide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

const PASSWORD = 'a passphrase long enough for tests';

describe('inbox scopes', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  async function signUp(email: string) {
    const res = await rt.app.inject({
      method: 'POST',
      url: '/api/signup',
      payload: { email, password: PASSWORD },
    });
    expect(res.statusCode).toBe(202);
    await rt.mailTo(email);
  }

  it('lists and deletes by the +tag of the recipient or an X-Mailproof-Scope header', async () => {
    await Promise.all([
      signUp('alice+test-a@example.com'),
      signUp('bob+test-a@example.com'),
      signUp('carol+test-b@example.com'),
    ]);
    await rt.inbox?.ingest(
      Buffer.from(
        'From: app@example.com\r\nTo: dave@example.com\r\nX-Mailproof-Scope: Test-B\r\nSubject: from another app\r\n\r\nhello\r\n',
      ),
      { from: 'app@example.com', to: ['dave@example.com'] },
    );
    const list = async (scope: string) =>
      (await rt.app.inject({ url: `/_inbox/api/messages?scope=${scope}` })).json()
        .messages as Array<{
        to: string[];
        scopes: string[];
      }>;
    const a = await list('test-a');
    expect(a.map((m) => m.to[0]).sort()).toEqual([
      'alice+test-a@example.com',
      'bob+test-a@example.com',
    ]);
    expect(a.every((m) => m.scopes.includes('test-a'))).toBe(true);
    const b = await list('test-b');
    expect(b.map((m) => m.to[0]).sort()).toEqual(['carol+test-b@example.com', 'dave@example.com']);

    const deleted = await rt.app.inject({
      method: 'DELETE',
      url: '/_inbox/api/messages?scope=test-a',
    });
    expect(deleted.json()).toEqual({ deleted: 2 });
    expect(await list('test-a')).toEqual([]);
    expect((await list('test-b')).length).toBe(2);
    const all = (await rt.app.inject({ url: '/_inbox/api/messages' })).json().messages;
    expect(all.length).toBe(2);
  });

  it('does not treat a scope as a pattern', async () => {
    await signUp('erin+under_score@example.com');
    expect(
      (await rt.app.inject({ url: '/_inbox/api/messages?scope=under%25' })).json().messages,
    ).toEqual([]);
    expect(
      (await rt.app.inject({ url: '/_inbox/api/messages?scope=under_score' })).json().messages,
    ).toHaveLength(1);
  });

  it('refuses a NUL (%00) in an address, a search or a scope instead of matching everything', async () => {
    // SQLite's LIKE ends a pattern at a NUL: `?to=%00x` once found every address's newest message,
    // and a scoped delete with one deleted every scope's messages.
    await signUp('frank+nul-scope@example.com');
    const before = (await rt.app.inject({ url: '/_inbox/api/messages' })).json().messages.length;
    expect(before).toBeGreaterThan(0);
    for (const [method, url] of [
      ['GET', '/_inbox/api/latest?to=%00abc'],
      ['GET', '/_inbox/api/messages?q=%00'],
      ['GET', '/_inbox/api/messages?to=%00zzz'],
      ['DELETE', '/_inbox/api/messages?scope=%00zz'],
      ['DELETE', '/_inbox/api/messages?to=fr%00'],
    ] as const) {
      const res = await rt.app.inject({ method, url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toEqual({
        error: {
          code: 'invalid_request',
          message: 'Invalid request: no field may hold the NUL character (U+0000).',
        },
      });
    }
    expect((await rt.app.inject({ url: '/_inbox/api/messages' })).json().messages.length).toBe(
      before,
    );
    // The inbox page's search: the same refusal, as a page.
    const page = await rt.app.inject({ url: '/_inbox?q=%00' });
    expect(page.statusCode).toBe(400);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('NUL character');
  });
});
