import { composeMime, type MailTransport } from '../mail/transport.ts';
import type { InboxStore } from './store.ts';

/** The development transport: the exact MIME message goes straight into the inbox, no socket. */
export function createInboxTransport(store: InboxStore): MailTransport {
  return {
    name: 'inbox',
    async send(email) {
      const raw = await composeMime(email);
      await store.ingest(raw, { from: null, to: [email.to] }, email.provenance, {
        from: email.from,
        to: [email.to],
        subject: email.subject,
        text: email.text,
        html: email.html,
        messageId: email.messageId,
      });
    },
    async close() {},
  };
}
