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

  it('documents the answers of the shared layers: parser errors, cross-site refusals, Retry-After', async () => {
    const doc = (await rt.app.inject({ url: '/api/openapi.json' })).json();
    const responses = (method: string, path: string) =>
      Object.keys(doc.paths[path][method].responses).sort();
    // Every POST under /api/ with a body: 400, 403 (cross_origin), 413 and 415.
    for (const [path, item] of Object.entries<Record<string, { requestBody?: unknown }>>(
      doc.paths,
    )) {
      const post = item.post;
      if (!path.startsWith('/api/') || !post?.requestBody) continue;
      expect(responses('post', path), path).toEqual(
        expect.arrayContaining(['400', '403', '413', '415']),
      );
    }
    expect(responses('post', '/api/login')).toEqual(expect.arrayContaining(['400', '401']));
    expect(responses('post', '/api/logout')).toEqual(expect.arrayContaining(['400', '403']));
    expect(responses('get', '/_inbox/api/latest')).toEqual(expect.arrayContaining(['400', '404']));
    expect(responses('get', '/_inbox/api/messages/{id}')).toEqual(
      expect.arrayContaining(['400', '404']),
    );
    expect(responses('delete', '/_inbox/api/messages/{id}')).toEqual(
      expect.arrayContaining(['400', '404']),
    );
    // The faults route answers 201, and the document says so.
    expect(responses('post', '/_inbox/api/faults')).toContain('201');
    expect(responses('post', '/_inbox/api/faults')).not.toContain('200');
    const created = await rt.app.inject({
      method: 'POST',
      url: '/_inbox/api/faults',
      payload: { action: 421, to: 'nobody-openapi@example.com' },
    });
    expect(created.statusCode).toBe(201);
    await rt.app.inject({ method: 'DELETE', url: '/_inbox/api/faults' });
    // Every 429 names its Retry-After header; the error shape is the documented one.
    const verify429 = doc.paths['/api/verify'].post.responses['429'];
    expect(verify429.headers['Retry-After'].schema.type).toBe('integer');
    const shape = doc.paths['/_inbox/api/latest'].get.responses['404'].content['application/json'];
    expect(shape.schema.properties.error.required).toEqual(['code', 'message']);
  });
});
