// The ceiling for the confirm figure: a bare node:http server that reads the same JSON POST,
// parses it and answers 200 {"status":"verified"}, with no framework, database or hashing.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const answer = JSON.stringify({ status: 'verified' });

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    let status = 200;
    let body = answer;
    try {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { token?: unknown };
      if (typeof parsed.token !== 'string') throw new Error('no token');
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
