// What every JSON route can answer besides what its own schema declares, added to the OpenAPI
// document as it is generated: the errors that come from the app's shared layers (the body
// parsers, the cross-site check, the inbox's basic auth) rather than from a route's handler, and
// the Retry-After header of every 429. The routes themselves are unchanged; only the document is.

type Responses = Record<string, unknown>;
interface Operation {
  requestBody?: unknown;
  responses?: Responses;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
};

function errorResponse(description: string) {
  return { description, content: { 'application/json': { schema: ERROR_SCHEMA } } };
}

const RETRY_AFTER = {
  description: 'Seconds to wait before trying again.',
  schema: { type: 'integer', minimum: 1 },
};

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Answers of single routes that cannot declare them: the live-updates stream is not JSON. */
const OWN: Record<string, [string, string]> = {
  'get /_inbox/api/events': ['403', 'origin_refused: live updates are for this site only'],
};

export function documentSharedAnswers<T>(document: T, options: { inboxAuth: boolean }): T {
  const paths = (document as { paths?: Record<string, Record<string, Operation>> }).paths ?? {};
  for (const [path, item] of Object.entries(paths)) {
    const inbox = path.startsWith('/_inbox/api/');
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const answers: Responses = operation.responses ?? {};
      operation.responses = answers;
      const addTo = (status: string, description: string) => {
        if (!(status in answers)) answers[status] = errorResponse(description);
      };
      addTo(
        '400',
        'invalid_request (a field, the query or the path is not valid, or holds U+0000), or invalid_json',
      );
      if (operation.requestBody) {
        addTo('413', 'body_too_large: the body is over 64 KB');
        addTo('415', 'unsupported_media_type: send the body as application/json');
      }
      if (!inbox && method !== 'get') {
        addTo('403', 'cross_origin: a browser on another site sent it');
      }
      if (path.includes('{id}') || path === '/_inbox/api/latest') {
        addTo('404', 'message_not_found');
      }
      const own = OWN[`${method} ${path}`];
      if (own) addTo(...own);
      if (inbox && options.inboxAuth) {
        addTo('401', 'The inbox asks for INBOX_AUTH (HTTP basic auth)');
      }
      const limited = answers['429'] as { headers?: Record<string, unknown> } | undefined;
      if (limited) limited.headers = { ...limited.headers, 'Retry-After': RETRY_AFTER };
    }
  }
  return document;
}
