import { composeMime, type MailTransport } from '../mail/transport.ts';
import { type FaultInjector, faultAsSendError } from './faults.ts';
import type { InboxStore } from './store.ts';

/** The development transport: the exact MIME message goes straight into the inbox, no socket. */
export function createInboxTransport(store: InboxStore, faults?: FaultInjector): MailTransport {
  return {
    name: 'inbox',
    async send(email) {
      const fault = faults?.take([email.to]);
      if (fault) throw faultAsSendError(fault.action);
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
