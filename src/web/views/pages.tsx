import type { ComponentChildren } from 'preact';
import { Card, Csrf, ErrorSummary, Field, Layout, type PageContext } from './layout.tsx';

type FieldErrors = Partial<Record<string, string>>;

function errorList(errors: FieldErrors): Array<{ field: string; message: string }> {
  return Object.entries(errors)
    .filter((e): e is [string, string] => Boolean(e[1]))
    .map(([field, message]) => ({ field, message }));
}

export function HomePage(props: { ctx: PageContext }) {
  const { ctx } = props;
  return (
    <Layout ctx={ctx} title="Welcome">
      <Card
        title={`Welcome to ${ctx.appName}`}
        lead="Accounts whose email address is proven: sign up, confirm the link or code we send, and log in."
      >
        <div class="actions">
          {ctx.user ? (
            <a class="button" href="/account">
              Go to your account
            </a>
          ) : (
            <>
              <a class="button" href="/signup">
                Create an account
              </a>
              <a class="button secondary" href="/login">
                Log in
              </a>
            </>
          )}
        </div>
        {ctx.inboxEnabled ? (
          <p class="note">
            Development mode: every email this app sends lands in the{' '}
            <a href="/_inbox">built-in inbox</a>.
          </p>
        ) : null}
      </Card>
    </Layout>
  );
}

export function SignupPage(props: {
  ctx: PageContext;
  email?: string;
  errors?: FieldErrors;
  minLength: number;
}) {
  const errors = props.errors ?? {};
  return (
    <Layout ctx={props.ctx} title="Sign up">
      <Card
        title="Create your account"
        lead="We will email you a link and a code to confirm the address is yours."
      >
        <ErrorSummary errors={errorList(errors)} />
        <form method="post" action="/signup" novalidate>
          <Csrf token={props.ctx.csrfToken} />
          <Field
            name="email"
            label="Email address"
            type="email"
            value={props.email}
            error={errors.email}
            autocomplete="email"
            maxLength={254}
          />
          <Field
            name="password"
            label="Password"
            type="password"
            error={errors.password}
            hint={`At least ${props.minLength} characters. Several words together work well.`}
            autocomplete="new-password"
            minLength={props.minLength}
          />
          <button type="submit" class="button">
            Sign up
          </button>
        </form>
        <p class="alt">
          Already have an account? <a href="/login">Log in</a>
        </p>
      </Card>
    </Layout>
  );
}

export function CheckInboxPage(props: { ctx: PageContext; email: string }) {
  return (
    <Layout ctx={props.ctx} title="Check your inbox">
      <Card title="Check your inbox">
        <p>
          We sent a message to <strong>{props.email}</strong>. Open the link in it, or type the
          8-digit code it contains.
        </p>
        <div class="actions">
          <a class="button" href={`/verify?email=${encodeURIComponent(props.email)}`}>
            Enter the code
          </a>
          {props.ctx.inboxEnabled ? (
            <a class="button secondary" href="/_inbox">
              Open the development inbox
            </a>
          ) : null}
        </div>
        <p class="note">
          Nothing arrived after a few minutes? Check your spam folder, or{' '}
          <a href={`/verify/resend?email=${encodeURIComponent(props.email)}`}>send a new link</a>.
        </p>
      </Card>
    </Layout>
  );
}

export function LoginPage(props: {
  ctx: PageContext;
  email?: string;
  error?: string;
  next?: string;
}) {
  return (
    <Layout ctx={props.ctx} title="Log in">
      <Card title="Log in">
        {props.error ? (
          <div class="error-summary" role="alert">
            <p id="login-error">{props.error}</p>
          </div>
        ) : null}
        <form method="post" action="/login" novalidate>
          <Csrf token={props.ctx.csrfToken} />
          <Field
            name="email"
            label="Email address"
            type="email"
            value={props.email}
            autocomplete="username"
            maxLength={254}
            invalidBy={props.error ? 'login-error' : undefined}
          />
          <Field
            name="password"
            label="Password"
            type="password"
            autocomplete="current-password"
            invalidBy={props.error ? 'login-error' : undefined}
          />
          <button type="submit" class="button">
            Log in
          </button>
        </form>
        <p class="alt">
          <a href="/forgot">Forgot your password?</a> New here?{' '}
          <a href="/signup">Create an account</a>
        </p>
      </Card>
    </Layout>
  );
}

export function ConfirmPage(props: { ctx: PageContext; action: string }) {
  return (
    <Layout ctx={props.ctx} title="Confirm your email">
      <Card title="Confirm your email address" lead="One click to prove this address is yours.">
        <form method="post" action={props.action}>
          <Csrf token={props.ctx.csrfToken} />
          <button type="submit" class="button" autofocus>
            Confirm
          </button>
        </form>
        <p class="note">
          This extra step keeps email scanners that open every link from confirming on your behalf.
        </p>
      </Card>
    </Layout>
  );
}

export type Outcome = 'verified' | 'already_verified' | 'expired' | 'invalid';

export function OutcomePage(props: {
  ctx: PageContext;
  outcome: Outcome;
  /** For an expired link: the token, so "send a new link" needs no address typed. */
  token?: string;
}) {
  const { ctx } = props;
  switch (props.outcome) {
    case 'verified':
      return (
        <Layout ctx={ctx} title="Email confirmed">
          <Card title="Your email is confirmed" lead="Thank you. Your account is ready.">
            <a class="button" href={ctx.user ? '/account' : '/login'}>
              {ctx.user ? 'Go to your account' : 'Log in'}
            </a>
          </Card>
        </Layout>
      );
    case 'already_verified':
      return (
        <Layout ctx={ctx} title="Already confirmed">
          <Card title="This address is already confirmed" lead="Nothing more to do.">
            <a class="button" href={ctx.user ? '/account' : '/login'}>
              {ctx.user ? 'Go to your account' : 'Log in'}
            </a>
          </Card>
        </Layout>
      );
    case 'expired':
      return (
        <ExpiredLinkPage
          ctx={ctx}
          lead="Links work for a limited time. We can send a fresh one to the same address."
          resendAction="/verify/resend"
          token={props.token}
        />
      );
    case 'invalid':
      return (
        <Layout ctx={ctx} title="Link not valid">
          <Card
            title="This link is not valid"
            lead="It may have been used already, replaced by a newer one, or copied incompletely."
          >
            <ResendForm ctx={ctx} />
            <p class="alt">
              Have a code? <a href="/verify">Enter it here</a>
            </p>
          </Card>
        </Layout>
      );
  }
}

function ResendForm(props: { ctx: PageContext; email?: string; error?: string }) {
  return (
    <form method="post" action="/verify/resend" novalidate>
      <Csrf token={props.ctx.csrfToken} />
      <Field
        name="email"
        label="Email address"
        type="email"
        value={props.email}
        error={props.error}
        autocomplete="email"
        maxLength={254}
      />
      <button type="submit" class="button">
        Send a new link
      </button>
    </form>
  );
}

/** The "type the code from the email" form, shared by every flow that sends a code. */
export function CodeEntryPage(props: {
  ctx: PageContext;
  action: string;
  lead: string;
  submitLabel: string;
  email?: string;
  errors?: FieldErrors;
  children?: ComponentChildren;
}) {
  const errors = props.errors ?? {};
  return (
    <Layout ctx={props.ctx} title="Enter your code">
      <Card title="Enter your code" lead={props.lead}>
        <ErrorSummary errors={errorList(errors)} />
        <form method="post" action={props.action} novalidate>
          <Csrf token={props.ctx.csrfToken} />
          <Field
            name="email"
            label="Email address"
            type="email"
            value={props.email}
            error={errors.email}
            autocomplete="email"
            maxLength={254}
          />
          <Field
            name="code"
            label="Code"
            error={errors.code}
            hint="8 digits, for example 1234 5678"
            autocomplete="one-time-code"
            inputMode="numeric"
            maxLength={12}
          />
          <button type="submit" class="button">
            {props.submitLabel}
          </button>
        </form>
        {props.children}
      </Card>
    </Layout>
  );
}

export function CodePage(props: { ctx: PageContext; email?: string; errors?: FieldErrors }) {
  return (
    <CodeEntryPage
      ctx={props.ctx}
      action="/verify"
      lead="Type the 8-digit code from the message we sent."
      submitLabel="Confirm"
      email={props.email}
      errors={props.errors}
    >
      <p class="alt">
        No code? <a href="/verify/resend">Send a new one</a>
      </p>
    </CodeEntryPage>
  );
}

/** An expired link's page: one click sends a fresh link to the address behind it, unshown. */
export function ExpiredLinkPage(props: {
  ctx: PageContext;
  lead: string;
  resendAction: string;
  token?: string;
}) {
  return (
    <Layout ctx={props.ctx} title="Link expired">
      <Card title="This link has expired" lead={props.lead}>
        <form method="post" action={props.resendAction}>
          <Csrf token={props.ctx.csrfToken} />
          <input type="hidden" name="token" value={props.token ?? ''} />
          <button type="submit" class="button">
            Send a new link
          </button>
        </form>
      </Card>
    </Layout>
  );
}

export function ResendPage(props: { ctx: PageContext; email?: string; error?: string }) {
  return (
    <Layout ctx={props.ctx} title="Send a new link">
      <Card
        title="Send a new confirmation link"
        lead="If the address has an account waiting for confirmation, a new link and code will arrive in a minute."
      >
        <ResendForm ctx={props.ctx} email={props.email} error={props.error} />
      </Card>
    </Layout>
  );
}

export function ResendSentPage(props: { ctx: PageContext }) {
  return (
    <Layout ctx={props.ctx} title="Check your inbox">
      <Card
        title="Check your inbox"
        lead="If that address has an account waiting for confirmation, we have sent it a new link and code. Earlier links no longer work."
      >
        <a class="button" href="/verify">
          Enter the code
        </a>
      </Card>
    </Layout>
  );
}

export function RateLimitedPage(props: {
  ctx: PageContext;
  retryAfterSeconds: number;
  back: string;
}) {
  return (
    <Layout ctx={props.ctx} title="Please wait">
      <Card
        title="Please wait a moment"
        lead={`Too many attempts. You can try again in ${formatWait(props.retryAfterSeconds)}.`}
      >
        <a class="button secondary" href={props.back}>
          Back
        </a>
      </Card>
    </Layout>
  );
}

export function ErrorPage(props: { ctx: PageContext; title: string; message: string }) {
  return (
    <Layout ctx={props.ctx} title={props.title}>
      <Card title={props.title} lead={props.message}>
        <a class="button secondary" href="/">
          Home
        </a>
      </Card>
    </Layout>
  );
}

export function formatWait(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
