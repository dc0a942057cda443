import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';

/** Paths may carry one-time tokens; logs get the shape of the path, never the token or query. */
export function redactUrl(url: string): string {
  const [path = '', query] = url.split('?');
  const shaped = path.replace(/^\/(verify|reset|contact\/confirm)\/[^/]+/, '/$1/:token');
  return query === undefined ? shaped : `${shaped}?…`;
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
      err: pino.stdSerializers.err,
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
