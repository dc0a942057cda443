import {
  AddressLink,
  type Branding,
  Button,
  CodeBox,
  EmailLayout,
  paragraph,
  small,
} from './layout.tsx';

export interface VerifyEmailData {
  url: string;
  code: string;
  linkMinutes: number;
  codeMinutes: number;
}

export const verifyEmail = {
  name: 'verify-email',
  subject: (_data: VerifyEmailData, branding: Branding) =>
    `Confirm your email address for ${branding.appName}`,
  body: (data: VerifyEmailData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader={`Your confirmation code is ${data.code}.`}
      footer={`You received this because this address was used to sign up at ${branding.appName}. If that was not you, ignore this message: no account is created until the address is confirmed.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Confirm your email address
      </h1>
      <p style={paragraph}>
        Thanks for signing up. Confirm that this address is yours to finish setting up your account.
      </p>
      <Button href={data.url} color={branding.brandColor}>
        Confirm my email
      </Button>
      <p style={paragraph}>Or enter this code on the confirmation page:</p>
      <CodeBox code={data.code} />
      <p style={small}>
        The button works for {formatMinutes(data.linkMinutes)} and the code for{' '}
        {formatMinutes(data.codeMinutes)}. If the button does not work, copy this address into your
        browser: <AddressLink href={data.url} color={branding.brandColor} />
      </p>
    </EmailLayout>
  ),
  sample: (branding: Branding): VerifyEmailData => ({
    url: `${branding.baseUrl}/verify/Sample-Token-Only-For-Previews-0123456789abc`,
    code: '48213907',
    linkMinutes: 60,
    codeMinutes: 10,
  }),
};

export function formatMinutes(minutes: number): string {
  if (minutes % 60 === 0 && minutes >= 60) {
    const hours = minutes / 60;
    return hours === 1 ? '1 hour' : `${hours} hours`;
  }
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
