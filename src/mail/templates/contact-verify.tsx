import {
  AddressLink,
  type Branding,
  Button,
  CodeBox,
  EmailLayout,
  paragraph,
  small,
} from './layout.tsx';
import { formatMinutes } from './verify-email.tsx';

export interface ContactVerifyData {
  url: string;
  code: string;
  linkMinutes: number;
  name: string;
  excerpt: string;
}

export const contactVerify = {
  name: 'contact-verify',
  subject: (_data: ContactVerifyData, branding: Branding) =>
    `Confirm your message to ${branding.appName}`,
  body: (data: ContactVerifyData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader={`Your confirmation code is ${data.code}.`}
      footer={`You received this because this address was entered in the contact form of ${branding.appName}. If that was not you, ignore this message: nothing is sent until the address is confirmed.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Confirm your message
      </h1>
      <p style={paragraph}>Hello {data.name}, we received this message from you:</p>
      <blockquote
        style={{
          margin: '0 0 16px',
          padding: '8px 16px',
          borderLeft: `4px solid ${branding.brandColor}`,
          color: '#59636e',
        }}
      >
        {data.excerpt}
      </blockquote>
      <p style={paragraph}>It will reach us only once you confirm that this address is yours.</p>
      <Button href={data.url} color={branding.brandColor}>
        Send my message
      </Button>
      <p style={paragraph}>Or enter this code on the confirmation page:</p>
      <CodeBox code={data.code} />
      <p style={small}>
        The button works for {formatMinutes(data.linkMinutes)}. If it does not work, copy this
        address into your browser: <AddressLink href={data.url} color={branding.brandColor} />
      </p>
    </EmailLayout>
  ),
  sample: (branding: Branding): ContactVerifyData => ({
    url: `${branding.baseUrl}/contact/confirm/Sample-Token-Only-For-Previews-0123456789abc`,
    code: '73019254',
    linkMinutes: 15,
    name: 'Ada Lovelace',
    excerpt: 'Hello, I would like to know more about your plans for teams.',
  }),
};
