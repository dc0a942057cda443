// Requests Node's HTTP parser refuses before any route or hook runs (headers too large, a broken
// request line, a request that took too long to arrive): answered in the API's error shape, with
// the API's security headers, and the connection closed, as Fastify's default handler does (its
// answer is {"error":"Bad Request","message":"Client Error","statusCode":400}).
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

interface Answer {
  status: number;
  code: string;
  message: string;
}

const BY_PARSER_CODE: Record<string, Answer> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    message: 'The request took too long to arrive.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    message: 'The request headers are too large.',
  },
};

const MALFORMED: Answer = {
  status: 400,
  code: 'bad_request',
  message: 'The request is not valid HTTP.',
};

/** Fastify's `clientErrorHandler`, with the raw answers written once. */
export function clientErrorHandler(
  securityHeaders: Record<string, string>,
): (error: Error & { code?: string }, socket: Socket) => void {
  const raw = (answer: Answer): string => {
    const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
    const headers = {
      ...securityHeaders,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      Connection: 'close',
    };
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    return `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n${lines.join('')}\r\n${body}`;
  };
  const answers = new Map<string, string>(
    Object.entries(BY_PARSER_CODE).map(([code, answer]) => [code, raw(answer)]),
  );
  const malformed = raw(MALFORMED);
  return (error, socket) => {
    // A reset connection has nobody left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (socket.writable) socket.write(answers.get(error.code ?? '') ?? malformed);
    socket.destroy(error);
  };
}
