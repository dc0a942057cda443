import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

describe('OpenAPI document', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime();
  });
  afterAll(async () => {
    await rt.close();
  });

  it('documents every JSON route with its request body, and no page route', async () => {
    const res = await rt.app.inject({ url: '/api/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/_inbox/api/events',
        '/_inbox/api/faults',
        '/_inbox/api/latest',
        '/_inbox/api/messages',
        '/_inbox/api/messages/{id}',
        '/_inbox/api/templates',
        '/api/account/delete',
        '/api/contact',
        '/api/contact/confirm',
        '/api/email/change',
        '/api/email/confirm',
        '/api/login',
        '/api/login/two-step',
        '/api/logout',
        '/api/logout/everywhere',
        '/api/me',
        '/api/password/change',
        '/api/password/forgot',
        '/api/password/reset',
        '/api/sessions',
        '/api/sessions/end',
        '/api/signup',
        '/api/two-step',
        '/api/two-step/disable',
        '/api/two-step/enable',
        '/api/two-step/recovery-codes',
        '/api/two-step/setup',
        '/api/verify',
        '/api/verify/resend',
      ].sort(),
    );
    const signup = doc.paths['/api/signup'].post;
    expect(signup.requestBody.content['application/json'].schema.required).toEqual([
      'email',
      'password',
    ]);
    expect(Object.keys(signup.responses)).toEqual(expect.arrayContaining(['202', '400', '429']));
    expect(doc.paths['/api/verify'].post.responses['410']).toBeDefined();
  });
});
