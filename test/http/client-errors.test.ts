// Requests Node's HTTP parser refuses before any route runs still get the API's error shape
// ({"error":{"code","message"}}) and its security headers, over a real socket.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRuntime, type TestRuntime } from '../support/runtime.ts';

/** Sends `request` as raw bytes and reads until the server closes the connection. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
    socket.write(request);
  });
}

function parse(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(
    lines.map((line) => {
      const at = line.indexOf(':');
      return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()] as const;
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

describe('requests refused by the HTTP parser', () => {
  let rt: TestRuntime;
  let port: number;
  beforeAll(async () => {
    rt = await createTestRuntime();
    await rt.app.listen({ port: 0, host: '127.0.0.1' });
    const address = rt.app.server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });
  afterAll(async () => {
    await rt.close();
  });

  it('answers headers that are too large with 431 in the error shape', async () => {
    const answer = parse(
      await rawExchange(
        port,
        `GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`,
      ),
    );
    expect(answer.status).toBe(431);
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(Number(answer.headers.get('content-length'))).toBe(Buffer.byteLength(answer.body));
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'headers_too_large', message: 'The request headers are too large.' },
    });
  });

  it('answers a malformed request line or header with 400 in the error shape', async () => {
    for (const request of [
      'BAD METHOD /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      'GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n',
    ]) {
      const answer = parse(await rawExchange(port, request));
      expect(answer.status, request).toBe(400);
      expect(answer.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(JSON.parse(answer.body), request).toEqual({
        error: { code: 'bad_request', message: 'The request is not valid HTTP.' },
      });
    }
  });

  it('still answers good requests on the same server', async () => {
    const answer = parse(
      await rawExchange(
        port,
        'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      ),
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });
});
