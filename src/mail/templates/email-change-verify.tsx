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

export interface EmailChangeVerifyData {
  url: string;
  code: string;
  linkMinutes: number;
  codeMinutes: number;
}

export const emailChangeVerify = {
  name: 'email-change-verify',
  subject: (_data: EmailChangeVerifyData, branding: Branding) =>
    `Confirm your new email address for ${branding.appName}`,
  body: (data: EmailChangeVerifyData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader={`Your confirmation code is ${data.code}.`}
      footer={`You received this because someone asked to move a ${branding.appName} account to this address. If that was not you, ignore this message: nothing changes until the address is confirmed.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Confirm your new email address
      </h1>
      <p style={paragraph}>
        You asked to use this address for your account. Confirm that it is yours and the change
        takes effect.
      </p>
      <Button href={data.url} color={branding.brandColor}>
        Confirm my new address
      </Button>
      <p style={paragraph}>Or enter this code on your account page:</p>
      <CodeBox code={data.code} />
      <p style={small}>
        The button works for {formatMinutes(data.linkMinutes)} and the code for{' '}
        {formatMinutes(data.codeMinutes)}. If the button does not work, copy this address into your
        browser: <AddressLink href={data.url} color={branding.brandColor} />
      </p>
    </EmailLayout>
  ),
  sample: (branding: Branding): EmailChangeVerifyData => ({
    url: `${branding.baseUrl}/account/email/confirm/Sample-Token-Only-For-Previews-0123456789abc`,
    code: '59102384',
    linkMinutes: 60,
    codeMinutes: 10,
  }),
};
