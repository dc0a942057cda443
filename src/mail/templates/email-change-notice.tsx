import { type Branding, Button, EmailLayout, paragraph } from './layout.tsx';

export interface EmailChangeNoticeData {
  newEmail: string;
  forgotUrl: string;
}

export const emailChangeNotice = {
  name: 'email-change-notice',
  subject: (_data: EmailChangeNoticeData, branding: Branding) =>
    `A request to change the email address of your ${branding.appName} account`,
  body: (data: EmailChangeNoticeData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader="If you asked for this, there is nothing to do here."
      footer={`This notice goes to the address an account has when someone asks to change it. Sent by ${branding.appName}.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Your email address may change
      </h1>
      <p style={paragraph}>
        Someone logged in to your account asked to change its email address to{' '}
        <strong>{data.newEmail}</strong>. The change happens only once it is confirmed from that
        address.
      </p>
      <p style={paragraph}>If you asked for this, there is nothing to do here.</p>
      <p style={paragraph}>
        If you did not, someone knows your password. Choose a new one now: a new password cancels
        the change and logs everyone else out.
      </p>
      <Button href={data.forgotUrl} color={branding.brandColor}>
        Secure my account
      </Button>
    </EmailLayout>
  ),
  sample: (branding: Branding): EmailChangeNoticeData => ({
    newEmail: 'ada.new@example.com',
    forgotUrl: `${branding.baseUrl}/forgot`,
  }),
};
