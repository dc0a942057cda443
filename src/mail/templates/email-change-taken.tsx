import { type Branding, Button, EmailLayout, paragraph } from './layout.tsx';

export interface EmailChangeTakenData {
  loginUrl: string;
}

export const emailChangeTaken = {
  name: 'email-change-taken',
  subject: (_data: EmailChangeTakenData, branding: Branding) =>
    `Someone tried to use your address at ${branding.appName}`,
  body: (data: EmailChangeTakenData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader="Your account already uses this address; nothing was changed."
      footer={`This note was sent because someone asked to move another ${branding.appName} account to this address. Nothing about your account has changed.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        This address already has an account
      </h1>
      <p style={paragraph}>
        Someone (perhaps you, from a second account) asked to change the email address of an account
        to this one. Your account already uses this address, so nothing was changed.
      </p>
      <p style={paragraph}>If it was you, log in with this address instead.</p>
      <Button href={data.loginUrl} color={branding.brandColor}>
        Log in
      </Button>
      <p style={paragraph}>If it was not you, you can ignore this message.</p>
    </EmailLayout>
  ),
  sample: (branding: Branding): EmailChangeTakenData => ({
    loginUrl: `${branding.baseUrl}/login`,
  }),
};
