import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type { Config } from '../config.ts';
import { envelopeSender, type MimeInput, writeMime } from './mime.ts';

export { composeMime } from './mime.ts';

/** A message to send: what goes into its MIME form, and where it came from. */
export interface OutgoingEmail extends Omit<MimeInput, 'date' | 'provenance'> {
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

/**
 * Thrown by a transport; `permanent` failures are not retried. `reason` tells an operator's
 * problem (`certificate`, `configuration`: fix the settings, the mail waits) from the message's.
 */
export class SendError extends Error {
  override name = 'SendError';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly reason: 'certificate' | 'configuration' | null = null,
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
  /** nodemailer keeps the TLS library's code here (DEPTH_ZERO_SELF_SIGNED_CERT, …). */
  originalCode?: string;
  message?: string;
}

/** OpenSSL's verdicts on a certificate chain, as Node reports them. */
const CERTIFICATE_ERRORS = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

/**
 * Failures of our own set-up rather than of the message: a certificate we do not trust, no
 * STARTTLS where it is required, credentials refused. Retried like an outage, so every message
 * is still queued once the configuration is fixed, however the server worded its reply.
 */
const CONFIGURATION_ERRORS = new Set(['EAUTH', 'ENOAUTH', 'ETLS']);

/** 5xx replies are permanent; 4xx replies, timeouts, refused connections and set-up faults are retried. */
export function classifySmtpError(error: unknown): SendError {
  const e = (error ?? {}) as SmtpErrorShape;
  const detail = (e.message ?? '').replace(/\s+/g, ' ').slice(0, 300);
  const tlsCode = [e.originalCode, e.code].find((c) => c && CERTIFICATE_ERRORS.has(c));
  if (tlsCode) {
    return new SendError(
      `TLS certificate of the mail server not trusted (${tlsCode}): ${detail}; set MAIL_CA_FILE to its CA or fix the server's certificate`,
      false,
      'certificate',
    );
  }
  const code = typeof e.responseCode === 'number' ? e.responseCode : null;
  const summary = code ? `SMTP ${code}` : (e.code ?? 'send failed');
  if (e.code && CONFIGURATION_ERRORS.has(e.code)) {
    return new SendError(`${e.code}${code ? ` ${code}` : ''}: ${detail}`, false, 'configuration');
  }
  return new SendError(`${summary}: ${detail}`, code !== null && code >= 500 && code < 600);
}

export type SmtpSettings = Config['mail'] & { server: string };

/** The nodemailer options for MAIL_*: pooled, verified TLS as configured, AUTH, DKIM. */
export function smtpOptions(config: SmtpSettings): SMTPPool.Options {
  return {
    pool: true,
    maxConnections: SMTP_POOL_SIZE,
    host: config.server,
    port: config.port,
    secure: config.useSsl,
    requireTLS: config.useTls,
    // Without MAIL_USE_TLS or MAIL_USE_SSL the connection stays plain even if STARTTLS is offered:
    // opportunistic TLS would fail on a local relay's self-signed certificate.
    ignoreTLS: !config.useTls && !config.useSsl,
    tls: {
      // Never turned off: a custom CA (MAIL_CA_FILE) is how a private server's certificate is trusted.
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(config.caPem ? { ca: config.caPem } : {}),
    },
    auth: config.username ? { user: config.username, pass: config.password ?? '' } : undefined,
    dkim: config.dkim
      ? {
          domainName: config.dkim.domain,
          keySelector: config.dkim.selector,
          privateKey: config.dkim.privateKey,
        }
      : undefined,
    connectionTimeout: Math.min(10, config.timeoutSeconds) * 1000,
    greetingTimeout: Math.min(10, config.timeoutSeconds) * 1000,
    socketTimeout: config.timeoutSeconds * 1000,
  };
}

/** As many connections as the worker sends at once, so no claimed message waits on the pool. */
export const SMTP_POOL_SIZE = 5;

export function createSmtpTransport(config: SmtpSettings): MailTransport {
  const transporter = nodemailer.createTransport(smtpOptions(config));
  return {
    name: 'smtp',
    async send(email) {
      // Our own MIME writer when the message has its usual shape (a tenth of the CPU); nodemailer
      // still pools, signs (DKIM) and sends it. Otherwise nodemailer composes it as well.
      const raw = writeMime(email);
      const sender = envelopeSender(email.from);
      try {
        await transporter.sendMail(
          raw && sender
            ? // The Message-ID is already in `raw`; given here too, nodemailer does not make up
              // one of its own for its bookkeeping (two random draws a message).
              { envelope: { from: sender, to: [email.to] }, raw, messageId: email.messageId }
            : {
                from: email.from,
                to: email.to,
                subject: email.subject,
                html: email.html,
                text: email.text,
                messageId: email.messageId,
                replyTo: email.replyTo,
              },
        );
      } catch (error) {
        throw classifySmtpError(error);
      }
    },
    async close() {
      // Idle connections close now; one in the middle of a delivery finishes it first.
      transporter.close();
    },
  };
}
