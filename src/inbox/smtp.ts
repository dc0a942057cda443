// The catcher's SMTP listener, so other applications can use the inbox as their mail catcher.
import { SMTPServer } from 'smtp-server';
import { type FaultInjector, faultMessage } from './faults.ts';
import type { InboxStore } from './store.ts';

export interface CatcherOptions {
  host: string;
  port: number;
  maxMessageBytes?: number;
  faults?: FaultInjector;
}

interface SmtpConnectionShape {
  id: string;
  _socket?: { destroy(): void };
}

export interface Catcher {
  port: number;
  close(): Promise<void>;
}

export async function startSmtpCatcher(
  store: InboxStore,
  options: CatcherOptions,
): Promise<Catcher> {
  const maxMessageBytes = options.maxMessageBytes ?? 25 * 1024 * 1024;
  const server = new SMTPServer({
    name: 'mailproof-inbox',
    banner: 'Mailproof inbox (catches all mail, relays none)',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    // Reverse DNS stalls on a machine without network access.
    disableReverseLookup: true,
    size: maxMessageBytes,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // Past the limit the message is refused anyway: keep reading it, stop holding it.
        if (bytes <= maxMessageBytes) chunks.push(chunk);
      });
      stream.on('end', () => {
        const sizeExceeded = (stream as unknown as { sizeExceeded?: boolean }).sizeExceeded;
        if (sizeExceeded || bytes > maxMessageBytes) {
          callback(
            Object.assign(new Error('Message exceeds the size limit'), { responseCode: 552 }),
          );
          return;
        }
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        const fault = options.faults?.take(envelope.to);
        if (fault?.action === 'drop') {
          // smtp-server has no API for this: find the session's connection and cut its socket.
          const connections = (server as unknown as { connections: Set<SmtpConnectionShape> })
            .connections;
          for (const connection of connections) {
            if (connection.id === session.id) connection._socket?.destroy();
          }
          return;
        }
        if (fault) {
          callback(
            Object.assign(new Error(faultMessage(fault.action).slice(4)), {
              responseCode: fault.action,
            }),
          );
          return;
        }
        store.ingest(Buffer.concat(chunks), envelope).then(
          () => callback(),
          () =>
            callback(
              Object.assign(new Error('Could not store the message'), { responseCode: 451 }),
            ),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  const address = server.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
