// The inbox UI at /_inbox and its JSON API at /_inbox/api.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { renderEmail } from '../mail/render.ts';
import { isTemplateName, type TemplateName, templates } from '../mail/templates/index.ts';
import { basicAuthorized, requestAdminAuth } from '../web/admin-auth.ts';
import { acceptForms } from '../web/body-checks.ts';
import { sendApiError } from '../web/errors.ts';
import { pageContext, sendPage, setFlash } from '../web/pages.tsx';
import { Csrf, Layout, type PageContext } from '../web/views/layout.tsx';
import { Attachments, registerAttachmentRoutes } from './attachments.tsx';
import { ChecksSection, HtmlPreview } from './check-views.tsx';
import { type MessageChecks, type RouteTable, runChecks } from './checks/index.ts';
import { checkTemplate, shippedTemplates, type TemplateCheck } from './checks/templates.ts';
import type { FaultInjector } from './faults.ts';
import type { InboxStore, MessageDetail, MessageSummary } from './store.ts';

export interface InboxRouteOptions {
  ctx: AppContext;
  inbox: InboxStore;
  faults: FaultInjector;
  /** The app's GET routes, for the link check. */
  routes: RouteTable;
}

const MAX_WAIT_MS = 60_000;
const idParam = z.object({ id: z.coerce.number().int().positive() });
const faultAction = z.union([z.literal(421), z.literal(451), z.literal(550), z.literal('drop')]);

// The message's own HTML is shown in a sandboxed frame: no scripts, no same-origin access. Its
// links open in a new tab (below), as a click in a mail client does: followed inside the frame,
// the app's own pages refuse to be framed and the preview turned into an error page.
const MESSAGE_HTML_CSP =
  "default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline'; font-src data: http: https:; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox";

/**
 * The served copy of an email's HTML with `<base target="_blank">` first in its head, so every
 * link opens outside the frame (Mailpit does the same). Only the preview changes: the stored
 * message, its source and its checks are the email as sent. After the doctype, if any, so the
 * document keeps its rendering mode.
 */
export function previewHtml(html: string): string {
  const base = '<base target="_blank">';
  const head = /<head(\s[^>]*)?>/i.exec(html);
  if (head)
    return (
      html.slice(0, head.index + head[0].length) + base + html.slice(head.index + head[0].length)
    );
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  if (doctype) return doctype[0] + base + html.slice(doctype[0].length);
  return base + html;
}

export const inboxRoutes: FastifyPluginAsyncZod<InboxRouteOptions> = async (
  app,
  { ctx, inbox, faults, routes },
) => {
  const checkOptions = { baseUrl: ctx.config.baseUrl, routes, spamd: ctx.config.inbox.spamd };
  // A message never changes, so its checks are computed once (spamd takes a while) and kept for
  // the most recent messages looked at.
  const checked = new Map<number, Promise<MessageChecks>>();
  const checksOf = (message: MessageDetail): Promise<MessageChecks> => {
    let pending = checked.get(message.id);
    if (!pending) {
      pending = runChecks(
        { ...message, raw: inbox.raw(message.id) ?? Buffer.alloc(0) },
        checkOptions,
      );
      checked.set(message.id, pending);
      if (checked.size > 200) checked.delete(checked.keys().next().value as number);
    }
    return pending;
  };
  // The templates and their sample data are fixed for the life of the process: checked once.
  let templateChecks: Promise<TemplateCheck[]> | null = null;
  const checkTemplates = (): Promise<TemplateCheck[]> => {
    templateChecks ??= Promise.all(
      shippedTemplates().map((t) => checkTemplate(t, ctx.branding, ctx.config, checkOptions)),
    );
    // A failed run (spamd restarting, say) is not kept: the next request tries again.
    templateChecks.catch(() => {
      templateChecks = null;
    });
    return templateChecks;
  };
  await acceptForms(app, 4 * 1024);
  const { auth } = ctx.config.inbox;
  if (auth) {
    // Every inbox page and API call (it holds every link and code the app sent) needs the password.
    app.addHook('onRequest', async (request, reply) => {
      if (!basicAuthorized(auth, request.headers.authorization)) {
        return requestAdminAuth(reply, 'Mailproof inbox');
      }
    });
  }

  app.get(
    '/api/messages',
    {
      schema: {
        querystring: z.object({
          to: z.string().max(320).optional(),
          q: z.string().max(200).optional(),
          scope: z.string().max(100).optional(),
          limit: z.coerce.number().int().min(1).max(500).optional(),
        }),
      },
    },
    async (request) => {
      const { to, q, scope, limit } = request.query;
      return { messages: inbox.list({ to, q, scope, limit }) };
    },
  );

  app.get('/api/messages/:id', { schema: { params: idParam } }, async (request, reply) => {
    const message = inbox.get(request.params.id);
    if (!message) return sendApiError(reply, 404, 'message_not_found', 'No message with this id.');
    return { ...message, checks: await checksOf(message) };
  });

  app.get('/api/templates', async () => ({
    templates: (await checkTemplates()).map(({ html: _html, text: _text, ...rest }) => rest),
  }));

  app.get(
    '/api/latest',
    {
      schema: {
        querystring: z.object({
          to: z.string().min(3).max(320),
          wait: z.coerce.number().int().min(0).max(MAX_WAIT_MS).optional(),
          since: z.coerce.number().int().min(0).optional(),
        }),
      },
    },
    async (request, reply) => {
      const { to, wait = 0, since = 0 } = request.query;
      const hangUp = new AbortController();
      reply.raw.on('close', () => hangUp.abort());
      const message = await inbox.waitForLatest(to, wait, since, hangUp.signal);
      if (!message) {
        return sendApiError(reply, 404, 'message_not_found', `No message to ${to} arrived.`);
      }
      return message;
    },
  );

  // Server-Sent Events: one `message` event (the summary as JSON) per message caught.
  const streams = new Set<ServerResponse>();
  // Open streams never go idle, so shutting down ends them instead of waiting for the browser.
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });
  app.get('/api/events', async (request, reply) => {
    if (!sameOrigin(request.headers.origin, ctx.config.baseUrl, request.headers.host)) {
      return sendApiError(reply, 403, 'origin_refused', 'Live updates are for this site only.');
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    const onMessage = (event: { id: number }) => {
      const summary = inbox.summary(event.id);
      if (summary) res.write(`id: ${summary.id}\ndata: ${JSON.stringify(summary)}\n\n`);
    };
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 25_000);
    inbox.events.on('message', onMessage);
    streams.add(res);
    res.on('close', () => {
      clearInterval(keepAlive);
      inbox.events.off('message', onMessage);
      streams.delete(res);
    });
  });

  // Fault injection: the next `count` messages (to recipients containing `to`, if given) are
  // answered with this SMTP code, or their connection is dropped, by the catcher and in-process.
  app.post(
    '/api/faults',
    {
      schema: {
        body: z.object({
          action: faultAction,
          count: z.number().int().min(1).max(1000).default(1),
          to: z.string().min(1).max(320).optional(),
        }),
        response: {
          201: z.object({
            id: z.number(),
            action: faultAction,
            remaining: z.number(),
            to: z.string().nullable(),
          }),
        },
      },
    },
    async (request, reply) => reply.code(201).send(faults.add(request.body)),
  );
  app.get('/api/faults', async () => ({ faults: faults.list() }));
  app.delete('/api/faults', async () => {
    const cleared = faults.list().length;
    faults.clear();
    return { cleared };
  });

  app.delete(
    '/api/messages',
    { schema: { querystring: z.object({ scope: z.string().min(1).max(100).optional() }) } },
    async (request) => ({ deleted: inbox.deleteAll(request.query.scope) }),
  );

  app.delete('/api/messages/:id', { schema: { params: idParam } }, async (request, reply) => {
    if (!inbox.delete(request.params.id)) {
      return sendApiError(reply, 404, 'message_not_found', 'No message with this id.');
    }
    return { deleted: 1 };
  });

  app.get('/', async (request, reply) => {
    const query = request.query as { q?: string };
    const q = typeof query.q === 'string' ? query.q.slice(0, 200) : '';
    const page = await pageContext(ctx, request, reply);
    return sendPage(reply, <InboxList ctx={page} messages={inbox.list({ q, limit: 200 })} q={q} />);
  });

  app.get('/messages/:id', { schema: { params: idParam } }, async (request, reply) => {
    const message = inbox.get(request.params.id);
    if (!message) return reply.callNotFound();
    inbox.markRead(message.id);
    const page = await pageContext(ctx, request, reply);
    return sendPage(
      reply,
      <InboxMessage
        ctx={page}
        message={message}
        raw={inbox.raw(message.id)}
        checks={await checksOf(message)}
      />,
    );
  });

  registerAttachmentRoutes(app, inbox);

  app.get('/messages/:id/html', { schema: { params: idParam } }, async (request, reply) => {
    const message = inbox.get(request.params.id);
    if (!message) return reply.callNotFound();
    return reply
      .header('Content-Security-Policy', MESSAGE_HTML_CSP)
      .header('X-Frame-Options', 'SAMEORIGIN')
      .type('text/html; charset=utf-8')
      .send(
        message.html === null
          ? '<p>This message has no HTML part.</p>'
          : previewHtml(withCidImages(message, message.html)),
      );
  });

  // The template gallery: every email the app sends, rendered with sample data, nothing sent.
  app.get('/templates', async (request, reply) => {
    const page = await pageContext(ctx, request, reply);
    return sendPage(reply, <TemplateGallery ctx={page} templates={await checkTemplates()} />);
  });

  app.get<{ Params: { name: string } }>('/templates/:name/html', async (request, reply) => {
    const { name } = request.params;
    if (!isTemplateName(name)) return reply.callNotFound();
    const { html } = renderEmail(name, sampleData(name, ctx.branding), ctx.branding);
    return reply
      .header('Content-Security-Policy', MESSAGE_HTML_CSP)
      .header('X-Frame-Options', 'SAMEORIGIN')
      .type('text/html; charset=utf-8')
      .send(previewHtml(html));
  });

  app.get('/messages/:id/raw', { schema: { params: idParam } }, async (request, reply) => {
    const raw = inbox.raw(request.params.id);
    if (!raw) return reply.callNotFound();
    return reply
      .type('message/rfc822')
      .header('Content-Disposition', `attachment; filename="message-${request.params.id}.eml"`)
      .send(raw);
  });

  app.post(
    '/messages/:id/delete',
    { schema: { params: idParam }, preHandler: app.csrfProtection },
    async (request, reply) => {
      setFlash(
        ctx,
        reply,
        inbox.delete(request.params.id)
          ? { kind: 'success', message: 'Message deleted.' }
          : { kind: 'info', message: 'That message had already been deleted.' },
      );
      return reply.redirect('/_inbox', 303);
    },
  );

  app.post('/delete-all', { preHandler: app.csrfProtection }, async (_request, reply) => {
    const deleted = inbox.deleteAll();
    setFlash(
      ctx,
      reply,
      deleted > 0
        ? {
            kind: 'success',
            message: `All messages deleted (${deleted} ${deleted === 1 ? 'message' : 'messages'}).`,
          }
        : { kind: 'info', message: 'The inbox was already empty.' },
    );
    return reply.redirect('/_inbox', 303);
  });
};

/** `cid:` references to the message's own inline parts point at their download route instead. */
function withCidImages(message: MessageDetail, html: string): string {
  if (message.attachments.length === 0) return html;
  return html.replace(/(["'(])cid:([^"')\s>]+)/gi, (match, quote: string, cid: string) => {
    let wanted = cid;
    try {
      wanted = decodeURIComponent(cid);
    } catch {}
    const part = message.attachments.find((a) => a.contentId === wanted);
    return part ? `${quote}/_inbox/messages/${message.id}/attachments/${part.index}` : match;
  });
}

/** A browser always sends Origin with EventSource; it must be this site (BASE_URL or the Host it used). */
function sameOrigin(
  origin: string | undefined,
  baseUrl: string,
  host: string | undefined,
): boolean {
  if (!origin) return true; // not a cross-site browser request (curl, tests)
  if (origin === new URL(baseUrl).origin) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function InboxList(props: { ctx: PageContext; messages: MessageSummary[]; q: string }) {
  return (
    <Layout ctx={props.ctx} title="Inbox">
      <section class="inbox" aria-labelledby="inbox-title">
        <div class="inbox-head">
          <h1 id="inbox-title">Inbox</h1>
          <a href="/_inbox/templates">Email templates</a>
          <search class="search">
            <form method="get" action="/_inbox">
              <label for="inbox-q">Search messages</label>
              <input
                id="inbox-q"
                name="q"
                type="search"
                value={props.q}
                placeholder="To, subject or text"
              />
              <button type="submit" class="button secondary">
                Search
              </button>
            </form>
          </search>
          {props.messages.length > 0 ? (
            <form method="post" action="/_inbox/delete-all">
              <Csrf token={props.ctx.csrfToken} />
              <button type="submit" class="button danger">
                Delete all
              </button>
            </form>
          ) : null}
        </div>
        <p id="live-status" class="visually-hidden" role="status" aria-live="polite" />
        <div data-live-inbox="" data-query={props.q}>
          {props.messages.length === 0 ? (
            <div class="empty">
              <p>
                <strong>{props.q ? 'No message matches your search.' : 'No messages yet.'}</strong>
              </p>
              <p>
                Every email this app sends appears here. Other apps can send to this inbox over SMTP
                too.
              </p>
            </div>
          ) : (
            <ul class="messages">
              {props.messages.map((m) => (
                <li key={m.id} class={m.read ? 'message read' : 'message unread'}>
                  <a href={`/_inbox/messages/${m.id}`}>
                    <span class="to">{m.to.join(', ')}</span>
                    <span class="subject">
                      {m.read ? null : <span class="visually-hidden">Unread: </span>}
                      {m.subject || '(no subject)'}
                    </span>
                    <span class="snippet">{m.snippet}</span>
                    <time dateTime={m.receivedAt}>
                      {m.receivedAt.replace('T', ' ').slice(0, 19)}
                    </time>
                  </a>
                </li>
              ))}
            </ul>
          )}
        </div>
        <script src="/static/inbox.js" defer />
      </section>
    </Layout>
  );
}

function sampleData(name: TemplateName, branding: AppContext['branding']): unknown {
  return (templates[name] as { sample(b: typeof branding): unknown }).sample(branding);
}

function TemplateGallery(props: { ctx: PageContext; templates: TemplateCheck[] }) {
  return (
    <Layout ctx={props.ctx} title="Email templates">
      <section class="inbox" aria-labelledby="gallery-title">
        <p>
          <a href="/_inbox">← Inbox</a>
        </p>
        <h1 id="gallery-title">Email templates</h1>
        <p class="lead">
          Every email this app sends, rendered with sample data. Nothing is sent from this page.
        </p>
        {props.templates.map((t) => (
          <article class="card template" key={t.name} aria-labelledby={`template-${t.name}`}>
            <h2 id={`template-${t.name}`}>
              <code>{t.name}</code>
            </h2>
            <dl class="details">
              <dt>Subject</dt>
              <dd>{t.subject}</dd>
              <dt>HTML size</dt>
              <dd>{(Buffer.byteLength(t.html) / 1024).toFixed(1)} KB</dd>
            </dl>
            <HtmlPreview
              id={`template-${t.name}`}
              title={`HTML part of ${t.name}`}
              src={`/_inbox/templates/${t.name}/html`}
            />
            <ChecksSection checks={t.checks} headingId={`checks-${t.name}`} />
            <details>
              <summary>Text part</summary>
              <pre class="message-text">{t.text}</pre>
            </details>
          </article>
        ))}
      </section>
    </Layout>
  );
}

const SOURCE_PREVIEW_BYTES = 200_000;

function InboxMessage(props: {
  ctx: PageContext;
  message: MessageDetail;
  raw: Buffer | null;
  checks: MessageChecks;
}) {
  const m = props.message;
  const source = props.raw ? props.raw.subarray(0, SOURCE_PREVIEW_BYTES).toString('utf8') : '';
  return (
    <Layout ctx={props.ctx} title={m.subject || 'Message'}>
      <article class="inbox-message" aria-labelledby="message-title">
        <p>
          <a href="/_inbox">← All messages</a>
        </p>
        <h1 id="message-title">{m.subject || '(no subject)'}</h1>
        <dl class="details">
          <dt>From</dt>
          <dd>{m.from}</dd>
          <dt>To</dt>
          <dd>{m.to.join(', ')}</dd>
          <dt>Received</dt>
          <dd>
            <time dateTime={m.receivedAt}>{m.receivedAt.replace('T', ' ').slice(0, 19)} UTC</time>
          </dd>
          {m.verification.url ? (
            <>
              <dt>Verification link</dt>
              <dd>
                <a href={m.verification.url} class="verification-link">
                  {m.verification.url}
                </a>
              </dd>
            </>
          ) : null}
          {m.verification.code ? (
            <>
              <dt>Code</dt>
              <dd>
                <code class="verification-code">{m.verification.code}</code>
              </dd>
            </>
          ) : null}
          {m.provenance ? (
            <>
              <dt>Sent by</dt>
              <dd>
                template <code>{m.provenance.template}</code>, flow <code>{m.provenance.flow}</code>
                , attempt {m.provenance.attempt}
              </dd>
            </>
          ) : null}
        </dl>
        <div class="actions">
          <a class="button secondary" href={`/_inbox/messages/${m.id}/raw`} download>
            Download .eml
          </a>
          <form method="post" action={`/_inbox/messages/${m.id}/delete`} class="inline">
            <Csrf token={props.ctx.csrfToken} />
            <button type="submit" class="button danger">
              Delete
            </button>
          </form>
        </div>
        <Attachments message={m} />
        <h2>HTML</h2>
        <HtmlPreview
          id="message"
          title="HTML part of the message"
          src={`/_inbox/messages/${m.id}/html`}
        />
        <ChecksSection checks={props.checks} headingId="checks-title" />
        <h2>Text</h2>
        <pre class="message-text">{m.text ?? '(no text part)'}</pre>
        <h2>Headers</h2>
        <table class="headers">
          <tbody>
            {m.headers.map((h, i) => (
              <tr key={`${h.name}-${i}`}>
                <th scope="row">{h.name}</th>
                <td>{h.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <details class="source">
          <summary>
            <h2>Source</h2>
          </summary>
          <pre class="message-text message-source">
            {source}
            {props.raw && props.raw.length > SOURCE_PREVIEW_BYTES
              ? '\n… (truncated; download the .eml for the whole message)'
              : ''}
          </pre>
        </details>
      </article>
    </Layout>
  );
}
