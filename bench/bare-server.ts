// The ceiling for the confirm and contact figures: a bare node:http server that reads the same
// JSON POST, parses it, checks the one field each route needs and answers as Mailproof does on
// success, with no framework, database or hashing:
//   /api/contact          {name, email, message}  → 202 {"status":"pending"}
//   /api/contact/confirm  {token}                 → 200 {"status":"accepted"}
//   any other path        {token}                 → 200 {"status":"verified"} (/api/verify)
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const verified = JSON.stringify({ status: 'verified' });
const accepted = JSON.stringify({ status: 'accepted' });
const pending = JSON.stringify({ status: 'pending' });

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    let status = 200;
    let body = verified;
    try {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        token?: unknown;
        message?: unknown;
      };
      if (request.url === '/api/contact') {
        if (typeof parsed.message !== 'string') throw new Error('no message');
        status = 202;
        body = pending;
      } else {
        if (typeof parsed.token !== 'string') throw new Error('no token');
        if (request.url === '/api/contact/confirm') body = accepted;
      }
    } catch {
      status = 400;
      body = '{"error":{"code":"invalid_json","message":"The body is not valid JSON."}}';
    }
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  });
});

server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.log(`bare server listening on 127.0.0.1:${bound}`);
});

const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
