// A minimal Fastify server answering the confirm POST, with Mailproof's pieces switched on one at
// a time: node --import tsx bench/experiments/fastify-floor.ts PORT none|zod|logger|headers|cookie,swagger

import cookie from '@fastify/cookie';
import csrfProtection from '@fastify/csrf-protection';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import pino from 'pino';
import { z } from 'zod';

const flags = new Set((process.argv[3] ?? '').split(','));
const log = pino({ level: 'warn' });
const app = Fastify(
  flags.has('logger')
    ? {
        loggerInstance: log,
        requestIdHeader: false,
        genReqId: (() => {
          let c = 0;
          return () => `x-${++c}`;
        })(),
        childLoggerFactory: (l) => l,
      }
    : { logger: false },
);
if (flags.has('swagger'))
  await app.register(swagger, {
    openapi: { info: { title: 'x', version: '1' } },
    transform: jsonSchemaTransform,
  });
if (flags.has('cookie')) {
  await app.register(cookie, { secret: 'x'.repeat(32) });
  await app.register(csrfProtection, { cookieOpts: { signed: true } });
}
if (flags.has('headers')) {
  const h: Record<string, string> = {};
  for (let i = 0; i < 12; i++) h[`x-header-${i}`] = 'value-'.repeat(5);
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(h);
    done();
  });
}
const errorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }).loose(),
});
if (flags.has('zod')) {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.post(
    '/api/verify',
    {
      schema: {
        body: z.union([
          z.object({ token: z.string().max(200) }),
          z.object({ email: z.string().max(1000), code: z.string().max(20) }),
        ]),
        response: {
          200: z.object({ status: z.enum(['verified', 'already_verified']) }),
          400: errorResponse,
        },
      },
    },
    async (req, reply) => {
      const b = req.body as { token: string };
      if (b.token.startsWith('.'))
        return reply
          .code(400)
          .send({ error: { code: 'token_invalid', message: 'This link is not valid.' } });
      return reply.send({ status: 'verified' });
    },
  );
} else {
  app.post('/api/verify', async (req, reply) => {
    const b = req.body as { token: string };
    if (b.token.startsWith('.'))
      return reply
        .code(400)
        .send({ error: { code: 'token_invalid', message: 'This link is not valid.' } });
    return { status: 'verified' };
  });
}
await app.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
console.log('up', [...flags]);
