import { type Branding, Button, EmailLayout, paragraph } from './layout.tsx';

export interface TwoStepChangedData {
  /** On or off now. */
  enabled: boolean;
  /** Who changed it: the owner on the account page, or an operator at the owner's request. */
  by: 'owner' | 'operator';
  accountUrl: string;
  forgotUrl: string;
}

export const twoStepChanged = {
  name: 'two-step-changed',
  subject: (data: TwoStepChangedData, branding: Branding) =>
    `Two-step sign-in was turned ${data.enabled ? 'on' : 'off'} for your ${branding.appName} account`,
  body: (data: TwoStepChangedData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader="If you made this change, there is nothing more to do."
      footer={`This notice is sent every time two-step sign-in is turned on or off for your ${branding.appName} account.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        Two-step sign-in is {data.enabled ? 'on' : 'off'}
      </h1>
      {data.enabled ? (
        <p style={paragraph}>
          From now on, logging in to your account takes your password and a code from your
          authenticator app. Keep your recovery codes somewhere safe: each one works once if you
          lose your phone.
        </p>
      ) : (
        <p style={paragraph}>
          {data.by === 'operator'
            ? 'At your request, the site operator turned off two-step sign-in for your account.'
            : 'Two-step sign-in was turned off on the account page.'}{' '}
          Logging in now takes only your password. You can turn it on again from your account.
        </p>
      )}
      <p style={paragraph}>If you made this change, there is nothing more to do.</p>
      <p style={paragraph}>
        If you did not, someone else may have access to your account. Choose a new password now: a
        new password logs everyone else out.
      </p>
      <Button href={data.forgotUrl} color={branding.brandColor}>
        Reset my password
      </Button>
      <p style={paragraph}>
        You can see whether two-step sign-in is on, and how many recovery codes are left, on{' '}
        <a href={data.accountUrl}>your account page</a>.
      </p>
    </EmailLayout>
  ),
  sample: (branding: Branding): TwoStepChangedData => ({
    enabled: false,
    by: 'owner',
    accountUrl: `${branding.baseUrl}/account`,
    forgotUrl: `${branding.baseUrl}/forgot`,
  }),
};
