// The API's response serializer: every answer is checked against its zod schema, keys the schema
// does not name are left out, and an answer that breaks its schema is a 500, never sent as it is.
import Fastify from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serializerCompiler } from '../../src/web/serializer.ts';

const app = Fastify();
app.setValidatorCompiler(validatorCompiler);
app.setSerializerCompiler(serializerCompiler);
const response = { 200: z.object({ status: z.enum(['verified', 'already_verified']) }) };
app.get('/extra', { schema: { response } }, async () => ({ status: 'verified', secret: 'hidden' }));
app.get('/wrong', { schema: { response } }, async () => ({ status: 'maybe' }));
app.get(
  '/loose',
  {
    schema: { response: { 200: z.object({ error: z.object({ code: z.string() }).loose() }) } },
  },
  async () => ({ error: { code: 'x', field: 'email' } }),
);

describe('serializerCompiler', () => {
  it('writes what the schema names and leaves out the rest', async () => {
    const res = await app.inject({ method: 'GET', url: '/extra' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toBe('{"status":"verified"}');
  });

  it('keeps the extra keys of a loose object', async () => {
    const res = await app.inject({ method: 'GET', url: '/loose' });
    expect(res.json()).toEqual({ error: { code: 'x', field: 'email' } });
  });

  it('answers 500 instead of sending an answer that breaks its schema', async () => {
    const res = await app.inject({ method: 'GET', url: '/wrong' });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('maybe');
  });
});
