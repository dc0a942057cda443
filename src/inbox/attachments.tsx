// A caught message's attachments: listed on the message page, downloaded one by one.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AttachmentInfo, InboxStore } from './store.ts';

type InboxApp = Parameters<FastifyPluginAsyncZod>[0];

const attachmentParams = z.object({
  id: z.coerce.number().int().positive(),
  index: z.string().max(20),
});

// A download is never rendered: a browser that opened it anyway finds nothing it may run.
const DOWNLOAD_CSP = "default-src 'none'; sandbox";

/** Registers the download route; called inside the inbox plugin, so INBOX_AUTH guards it. */
export function registerAttachmentRoutes(app: InboxApp, inbox: InboxStore): void {
  app.get(
    '/messages/:id/attachments/:index',
    { schema: { params: attachmentParams } },
    async (request, reply) => {
      const index = parseIndex(request.params.index);
      const attachment = index === null ? null : await inbox.attachment(request.params.id, index);
      if (!attachment) return reply.callNotFound();
      return reply
        .header('Content-Type', downloadType(attachment.contentType))
        .header('Content-Disposition', attachmentDisposition(attachment.filename))
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', DOWNLOAD_CSP)
        .send(attachment.content);
    },
  );
}

export function attachmentUrl(messageId: number, index: number): string {
  return `/_inbox/messages/${messageId}/attachments/${index}`;
}

function parseIndex(value: string): number | null {
  return /^(0|[1-9][0-9]{0,5})$/.test(value) ? Number(value) : null;
}

const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

/**
 * The part's own type, unless a browser would run it as active content on the inbox's origin
 * (HTML, SVG, any XML, script): those, and anything malformed, download as plain bytes.
 */
export function downloadType(contentType: string): string {
  const type = contentType.trim().toLowerCase();
  if (!MIME_TYPE.test(type)) return 'application/octet-stream';
  const subtype = type.slice(type.indexOf('/') + 1);
  const active =
    type === 'text/html' ||
    subtype === 'xml' ||
    subtype.endsWith('+xml') ||
    /(java|ecma|j)script$/.test(subtype);
  return active ? 'application/octet-stream' : type;
}

/** RFC 6266: an ASCII `filename` for old clients and the exact name as RFC 5987 `filename*`. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    // Quotes and backslashes would end the quoted string; some clients percent-decode it.
    .replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function Attachments(props: { message: { id: number; attachments: AttachmentInfo[] } }) {
  const { id, attachments } = props.message;
  if (attachments.length === 0) return null;
  return (
    <section class="attachments" aria-labelledby="attachments-title">
      <h2 id="attachments-title">Attachments</h2>
      <ul class="attachment-list">
        {attachments.map((a) => (
          <li key={a.index}>
            <a href={attachmentUrl(id, a.index)} download>
              {a.filename}
            </a>{' '}
            <span class="attachment-meta">
              {a.contentType} · {humanSize(a.size)}
              {a.inline ? ' · inline' : ''}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
