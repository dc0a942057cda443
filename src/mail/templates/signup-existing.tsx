import { type Branding, Button, EmailLayout, paragraph } from './layout.tsx';

export interface SignupExistingData {
  loginUrl: string;
}

export const signupExisting = {
  name: 'signup-existing',
  subject: (_data: SignupExistingData, branding: Branding) =>
    `Someone tried to sign up at ${branding.appName} with your address`,
  body: (data: SignupExistingData, branding: Branding) => (
    <EmailLayout
      branding={branding}
      preheader="Your account already exists; no second account was made."
      footer={`This note was sent because a sign-up form at ${branding.appName} was submitted with this address. Nothing about your account has changed.`}
    >
      <h1 style={{ fontSize: '22px', lineHeight: '30px', margin: '0 0 16px' }}>
        You already have an account
      </h1>
      <p style={paragraph}>
        Someone (perhaps you) just tried to sign up with this email address. Your account already
        exists, so no new account was made and your password has not changed.
      </p>
      <p style={paragraph}>If it was you, simply log in.</p>
      <Button href={data.loginUrl} color={branding.brandColor}>
        Log in
      </Button>
      <p style={paragraph}>If it was not you, you can ignore this message.</p>
    </EmailLayout>
  ),
  sample: (branding: Branding): SignupExistingData => ({
    loginUrl: `${branding.baseUrl}/login`,
  }),
};
