import { AddressLink, type Branding, Button, EmailLayout, paragraph, small } from './layout.tsx';
import { formatMinutes } from './verify-email.tsx';

export interface PasswordResetData {
  url: string;
  linkMinutes: number;
}

export const passwordReset = {
  name: 'password-reset',
  subject: (_data: PasswordResetData, branding: Branding) =>
    `Reset your password for ${branding.appName}`,
  body: (data: PasswordResetData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader={`Choose a new password within ${formatMinutes(data.linkMinutes)}.`}
      footer={`You received this because someone asked to reset the password of your ${branding.appName} account. If that was not you, ignore this message: your password stays as it is.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Choose a new password
      </h1>
      <p style={paragraph}>
        Someone, hopefully you, asked to reset the password of your account. Use the button to
        choose a new one. Every device logged in to your account will be logged out.
      </p>
      <Button href={data.url} color={branding.brandColor}>
        Choose a new password
      </Button>
      <p style={small}>
        The button works once, for {formatMinutes(data.linkMinutes)}. If it does not work, copy this
        address into your browser: <AddressLink href={data.url} color={branding.brandColor} />
      </p>
    </EmailLayout>
  ),
  sample: (branding: Branding): PasswordResetData => ({
    url: `${branding.baseUrl}/reset/Sample-Token-Only-For-Previews-0123456789abc`,
    linkMinutes: 30,
  }),
};
