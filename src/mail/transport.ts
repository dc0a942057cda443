import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';

export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  messageId: string;
  replyTo?: { name: string; address: string };
  /** Which template, flow and request made this message; kept by the inbox, not sent to the internet. */
  provenance: {
    template: string;
    flow: string;
    requestId: string | null;
    outboxId: string;
    attempt: number;
    /** Why the attempt before this one failed, when there was one. */
    previousError?: string | null;
  };
}

/** Thrown by a transport; `permanent` failures are not retried. */
export class SendError extends Error {
  override name = 'SendError';
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export interface MailTransport {
  readonly name: string;
  send(email: OutgoingEmail): Promise<void>;
  close(): Promise<void>;
}

interface SmtpErrorShape {
  responseCode?: number;
  code?: string;
  message?: string;
}

/** 5xx replies are permanent; 4xx replies, timeouts and refused connections are worth retrying. */
export function classifySmtpError(error: unknown): SendError {
  const e = (error ?? {}) as SmtpErrorShape;
  const code = typeof e.responseCode === 'number' ? e.responseCode : null;
  const summary = code ? `SMTP ${code}` : (e.code ?? 'send failed');
  const detail = (e.message ?? '').replace(/\s+/g, ' ').slice(0, 300);
  return new SendError(`${summary}: ${detail}`, code !== null && code >= 500 && code < 600);
}

export function createSmtpTransport(config: Config['mail'] & { server: string }): MailTransport {
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: 5,
    host: config.server,
    port: config.port,
    secure: config.useSsl,
    requireTLS: config.useTls,
    ignoreTLS: !config.useTls && !config.useSsl,
    auth: config.username ? { user: config.username, pass: config.password ?? '' } : undefined,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    name: 'smtp',
    async send(email) {
      try {
        await transporter.sendMail({
          from: email.from,
          to: email.to,
          subject: email.subject,
          html: email.html,
          text: email.text,
          messageId: email.messageId,
          replyTo: email.replyTo,
        });
      } catch (error) {
        throw classifySmtpError(error);
      }
    },
    async close() {
      transporter.close();
    },
  };
}

const composer = nodemailer.createTransport({
  streamTransport: true,
  buffer: true,
  newline: 'windows',
});

/** Builds the exact MIME message an SMTP server would receive, without a socket. */
export async function composeMime(email: OutgoingEmail): Promise<Buffer> {
  const info = await composer.sendMail({
    from: email.from,
    to: email.to,
    subject: email.subject,
    html: email.html,
    text: email.text,
    messageId: email.messageId,
    replyTo: email.replyTo,
  });
  return info.message as Buffer;
}
