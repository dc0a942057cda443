import { type Branding, Button, EmailLayout, paragraph } from './layout.tsx';

export interface PasswordChangedData {
  /** How it changed: on the account page, or through an emailed reset link. */
  via: 'change' | 'reset';
  forgotUrl: string;
}

export const passwordChanged = {
  name: 'password-changed',
  subject: (_data: PasswordChangedData, branding: Branding) =>
    `Your ${branding.appName} password was changed`,
  body: (data: PasswordChangedData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader="If you made this change, there is nothing more to do."
      footer={`This notice is sent every time the password of your ${branding.appName} account changes.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Your password was changed
      </h1>
      <p style={paragraph}>
        {data.via === 'reset'
          ? 'The password of your account was just reset with a link sent to this address. Every device that was logged in has been logged out.'
          : 'The password of your account was just changed on the account page. Every other device that was logged in has been logged out.'}
      </p>
      <p style={paragraph}>If you made this change, there is nothing more to do.</p>
      <p style={paragraph}>
        If you did not, someone else may have access to your account. Choose a new password now: a
        new password logs everyone else out.
      </p>
      <Button href={data.forgotUrl} color={branding.brandColor}>
        Reset my password
      </Button>
    </EmailLayout>
  ),
  sample: (branding: Branding): PasswordChangedData => ({
    via: 'reset',
    forgotUrl: `${branding.baseUrl}/forgot`,
  }),
};
