import pino, { type DestinationStream, type Logger } from 'pino';
import { redactEmail } from './accounts/email.ts';
import type { Config } from './config.ts';

/** Paths may carry one-time tokens; logs get the shape of the path, never the token or query. */
export function redactUrl(url: string): string {
  const [path = '', query] = url.split('?');
  const shaped = path.replace(/^\/(verify|reset|contact\/confirm)\/[^/]+/, '/$1/:token');
  return query === undefined ? shaped : `${shaped}?…`;
}

/** Free text for logs (an SMTP reply, say) with every email address in it redacted. */
export function redactEmails(text: string): string {
  return text.replace(/[^\s<>"'(),;:[\]]+@[^\s<>"'(),;:[\]]+/g, (address) => redactEmail(address));
}

/** `destination` defaults to stdout; tests pass an in-memory stream to read what would be logged. */
export function createLogger(
  config: Pick<Config, 'logLevel'>,
  destination?: DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    redact: {
      paths: [
        'req.headers.cookie',
        'req.headers.authorization',
        'res.headers["set-cookie"]',
        '*.password',
        '*.email',
        '*.token',
        '*.code',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url ?? ''),
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: serializeError,
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

// Database errors can quote the offending row (PostgreSQL's `detail`), and SMTP errors quote the
// recipient: neither reaches the log as it is.
function serializeError(error: Error): Record<string, unknown> {
  const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  const { detail: _detail, where: _where, parameters: _parameters, ...rest } = serialized;
  for (const key of ['message', 'stack', 'response'] as const) {
    if (typeof rest[key] === 'string') rest[key] = redactEmails(rest[key] as string);
  }
  return rest;
}
