import { type Branding, EmailLayout, paragraph, small } from './layout.tsx';

export interface ContactDeliveryData {
  name: string;
  email: string;
  message: string;
  receivedAt: string;
}

export const contactDelivery = {
  name: 'contact-delivery',
  // Header values are built from the sender's input: no line breaks survive into them, and a
  // name holding markup or an encoded word never reaches one (the address stands in for it).
  subject: (data: ContactDeliveryData, branding: Branding) =>
    `[${oneLine(branding.appName)}] Contact form: message from ${headerName(data.name) ?? data.email}`,
  replyTo: (data: ContactDeliveryData) => ({
    name: headerName(data.name) ?? '',
    address: data.email,
  }),
  body: (data: ContactDeliveryData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader={`${oneLine(data.name)} wrote through the contact form.`}
      footer={`The sender confirmed their address before this message was delivered. Reply to this email to answer them. Sent by the contact form of ${branding.appName}.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        New message from the contact form
      </h1>
      <p style={paragraph}>
        <strong>From:</strong> {data.name} &lt;{data.email}&gt; (address confirmed)
      </p>
      <div
        style={{
          margin: '0 0 16px',
          padding: '12px 16px',
          backgroundColor: '#f4f5f7',
          wordWrap: 'break-word',
        }}
      >
        {data.message.split('\n').map((line, i) => (
          // Lines as typed: escaped text with <br>, so both the HTML and the text part keep them.
          <span key={i}>
            {i > 0 ? <br /> : null}
            {line}
          </span>
        ))}
      </div>
      <p style={paragraph}>
        <a href={`mailto:${data.email}`} style={{ color: branding.brandColor }}>
          Reply to {data.name}
        </a>
      </p>
      <p style={small}>Received {data.receivedAt}.</p>
    </EmailLayout>
  ),
  sample: (_branding: Branding): ContactDeliveryData => ({
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    message: 'Hello,\n\nI would like to know more about your plans for teams.\n\nAda',
    receivedAt: '2026-01-15 12:00 UTC',
  }),
};

/** Collapses every run of whitespace (CR and LF included) to one space and trims the length. */
/**
 * The sender's name as a header may carry it, or null. SPEC §3: a name holding HTML or script
 * never reaches a header; nor does one holding `=?`, which mail clients decode as an encoded word
 * even inside quotes (a typed `=?utf-8?b?…?=` would show as text the sender chose to hide).
 */
export function headerName(value: string): string | null {
  const line = oneLine(value);
  return line && !/[<>]|=\?/.test(line) ? line : null;
}

export function oneLine(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  const collapsed = value.replace(/[\s\u0000-\u001f\u007f]+/g, ' ');
  return collapsed.trim().slice(0, 200);
}
