// Pages of the account's lifecycle: the account page, password reset, and email change.
import type { ComponentChildren } from 'preact';
import type { PendingEmailChange } from '../../accounts/email-change.ts';
import type { ActiveSession } from '../../accounts/session.ts';
import type { TwoStepStatus } from '../../accounts/two-step.ts';
import { Card, Csrf, ErrorSummary, Field, Layout, type PageContext } from './layout.tsx';
import { formatWait } from './pages.tsx';

/** Errors of the account page's forms, keyed by the id of their field (without `field-`). */
export type AccountErrors = Partial<
  Record<
    | 'pw-current'
    | 'pw-new'
    | 'email-new'
    | 'email-password'
    | 'email-code'
    | 'sessions-password'
    | 'sessions-select'
    | 'delete-password',
    string
  >
>;

function errorList(errors: Partial<Record<string, string>>) {
  return Object.entries(errors)
    .filter((e): e is [string, string] => Boolean(e[1]))
    .map(([field, message]) => ({ field, message }));
}

function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC`;
}

function Time(props: { ms: number }) {
  return <time dateTime={new Date(props.ms).toISOString()}>{formatTime(props.ms)}</time>;
}

function Intent(props: { value: string }) {
  return <input type="hidden" name="intent" value={props.value} />;
}

function Section(props: { id: string; title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-labelledby={`${props.id}-title`} id={props.id}>
      <h2 class="section-title" id={`${props.id}-title`}>
        {props.title}
      </h2>
      {props.children}
    </section>
  );
}

export function AccountPage(props: {
  ctx: PageContext;
  email: string;
  verified: boolean;
  pending: PendingEmailChange | null;
  sessions: ActiveSession[];
  twoStep: TwoStepStatus;
  minLength: number;
  errors?: AccountErrors;
  values?: { newEmail?: string };
}) {
  const { ctx } = props;
  const errors = props.errors ?? {};
  const csrf = <Csrf token={ctx.csrfToken} />;
  return (
    <Layout ctx={ctx} title="Your account">
      <Card title="Your account">
        <ErrorSummary errors={errorList(errors)} />
        {props.verified ? null : (
          <div class="banner" role="status">
            <p>
              <strong>Please confirm your email address.</strong> We sent a link and a code to{' '}
              {props.email}.
            </p>
            <div class="actions">
              <form method="post" action="/verify/resend" class="inline">
                {csrf}
                <input type="hidden" name="email" value={props.email} />
                <button type="submit" class="button">
                  Send a new link
                </button>
              </form>
              <a class="button secondary" href={`/verify?email=${encodeURIComponent(props.email)}`}>
                Enter the code
              </a>
            </div>
          </div>
        )}
        <dl class="details">
          <dt>Email</dt>
          <dd>{props.email}</dd>
          <dt>Status</dt>
          <dd>
            {props.verified ? (
              <span class="badge ok">Confirmed</span>
            ) : (
              <span class="badge warn">Waiting for confirmation</span>
            )}
          </dd>
        </dl>
        <form method="post" action="/logout">
          {csrf}
          <button type="submit" class="button secondary">
            Log out
          </button>
        </form>
      </Card>

      <Section id="change-password" title="Change your password">
        <form method="post" action="/account" novalidate>
          {csrf}
          <Intent value="change_password" />
          <Field
            id="field-pw-current"
            name="currentPassword"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={errors['pw-current']}
          />
          <Field
            id="field-pw-new"
            name="newPassword"
            label="New password"
            type="password"
            autocomplete="new-password"
            hint={`At least ${props.minLength} characters. Your other devices will be logged out.`}
            minLength={props.minLength}
            error={errors['pw-new']}
          />
          <button type="submit" class="button">
            Change password
          </button>
        </form>
      </Section>

      <TwoStepSection csrf={csrf} status={props.twoStep} />

      <Section id="change-email" title="Change your email address">
        {props.pending ? (
          <div class="pending-change">
            <p>
              We sent a link and a code to <strong>{props.pending.newEmail}</strong>. Your address
              changes once you confirm it from there.
            </p>
            <form method="post" action="/account" novalidate>
              {csrf}
              <Intent value="confirm_email_code" />
              <Field
                id="field-email-code"
                name="code"
                label="Code"
                hint="8 digits, for example 1234 5678"
                autocomplete="one-time-code"
                inputMode="numeric"
                maxLength={12}
                error={errors['email-code']}
              />
              <div class="actions">
                <button type="submit" class="button">
                  Confirm the new address
                </button>
              </div>
            </form>
            <form method="post" action="/account">
              {csrf}
              <Intent value="cancel_email_change" />
              <div class="actions">
                <button type="submit" class="button secondary">
                  Cancel the change
                </button>
              </div>
            </form>
          </div>
        ) : null}
        <form method="post" action="/account" novalidate>
          {csrf}
          <Intent value="change_email" />
          <Field
            id="field-email-new"
            name="newEmail"
            label="New email address"
            type="email"
            autocomplete="email"
            maxLength={254}
            value={props.values?.newEmail}
            hint="We will send a link and a code there; your address changes once you confirm."
            error={errors['email-new']}
          />
          <Field
            id="field-email-password"
            name="password"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={errors['email-password']}
          />
          <button type="submit" class="button">
            Send a confirmation link
          </button>
        </form>
      </Section>

      <Section id="sessions" title="Where you are logged in">
        <form method="post" action="/account" novalidate>
          {csrf}
          {/* The error belongs to the group; the summary's link lands on the first box. */}
          <fieldset
            class={errors['sessions-select'] ? 'session-list has-error' : 'session-list'}
            aria-describedby={errors['sessions-select'] ? 'field-sessions-select-error' : undefined}
          >
            <legend class="session-legend">Your sessions, newest first</legend>
            {errors['sessions-select'] ? (
              <p class="error" id="field-sessions-select-error">
                {errors['sessions-select']}
              </p>
            ) : null}
            <ul class="sessions">
              {props.sessions.map((session, i) => (
                <li key={session.id} class="session">
                  <input
                    class="session-check"
                    type="checkbox"
                    id={i === 0 ? 'field-sessions-select' : `session-${session.id}`}
                    name="session"
                    value={session.id}
                    aria-invalid={errors['sessions-select'] ? 'true' : undefined}
                  />{' '}
                  <label for={i === 0 ? 'field-sessions-select' : `session-${session.id}`}>
                    Logged in <Time ms={session.createdAt} />, last active{' '}
                    <Time ms={session.lastSeenAt} />
                    {session.current ? <strong class="this-device"> (this device)</strong> : null}
                  </label>
                </li>
              ))}
            </ul>
          </fieldset>
          <Field
            id="field-sessions-password"
            name="password"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={errors['sessions-password']}
          />
          <div class="actions">
            <button type="submit" class="button secondary" name="intent" value="end_sessions">
              Log out the selected sessions
            </button>
            <button type="submit" class="button secondary" name="intent" value="logout_everywhere">
              Log out everywhere
            </button>
          </div>
        </form>
      </Section>

      <Section id="delete-account" title="Delete your account">
        <p>
          This removes your account, your sessions and any email still waiting to be sent to you. It
          cannot be undone.
        </p>
        <form method="post" action="/account" novalidate>
          {csrf}
          <Intent value="delete_account" />
          <Field
            id="field-delete-password"
            name="password"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={errors['delete-password']}
          />
          <button type="submit" class="button danger">
            Delete my account
          </button>
        </form>
      </Section>
    </Layout>
  );
}

/** Whether two-step sign-in is on, with the way to set it up or manage it (/account/two-step). */
function TwoStepSection(props: { csrf: ComponentChildren; status: TwoStepStatus }) {
  const { enabled, recoveryCodesLeft } = props.status;
  if (!enabled) {
    return (
      <Section id="two-step" title="Two-step sign-in">
        <p>
          <span class="badge warn">Off</span> Logging in takes only your password. Add a code from
          an authenticator app on your phone, so a stolen password is not enough.
        </p>
        <form method="post" action="/account/two-step">
          {props.csrf}
          <Intent value="start" />
          <button type="submit" class="button">
            Set up two-step sign-in
          </button>
        </form>
      </Section>
    );
  }
  return (
    <Section id="two-step" title="Two-step sign-in">
      <p>
        <span class="badge ok">On</span> Logging in takes your password and a code from your
        authenticator app.
      </p>
      <p class={recoveryCodesLeft <= 2 ? 'error' : undefined} id="recovery-codes-left">
        {recoveryCodesLeft === 1
          ? '1 recovery code left.'
          : `${recoveryCodesLeft} recovery codes left.`}
        {recoveryCodesLeft <= 2 ? ' Make new ones before you run out.' : null}
      </p>
      <a class="button secondary" href="/account/two-step">
        Manage two-step sign-in
      </a>
    </Section>
  );
}

export function ForgotPage(props: { ctx: PageContext; email?: string; error?: string }) {
  return (
    <Layout ctx={props.ctx} title="Reset your password">
      <Card
        title="Reset your password"
        lead="Enter the address of your account and we will email you a link to choose a new password."
      >
        <ErrorSummary errors={props.error ? [{ field: 'email', message: props.error }] : []} />
        <form method="post" action="/forgot" novalidate>
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
            Send the link
          </button>
        </form>
        <p class="alt">
          Remembered it? <a href="/login">Log in</a>
        </p>
      </Card>
    </Layout>
  );
}

export function ForgotSentPage(props: { ctx: PageContext; linkSeconds: number }) {
  return (
    <Layout ctx={props.ctx} title="Check your inbox">
      <Card
        title="Check your inbox"
        lead={`If an account uses that address, we have sent it a link to choose a new password. The link works once, for ${formatWait(props.linkSeconds)}.`}
      >
        <p class="note">
          Nothing arrived after a few minutes? Check your spam folder, or{' '}
          <a href="/forgot">ask again</a>.
        </p>
      </Card>
    </Layout>
  );
}

export function ResetPage(props: {
  ctx: PageContext;
  action: string;
  minLength: number;
  error?: string;
  /** The account has two-step sign-in on: the form asks for a code too (ASVS 6.4.3). */
  twoStep?: boolean;
  codeError?: string;
}) {
  const errors = [
    ...(props.error ? [{ field: 'password', message: props.error }] : []),
    ...(props.codeError ? [{ field: 'code', message: props.codeError }] : []),
  ];
  return (
    <Layout ctx={props.ctx} title="Choose a new password">
      <Card
        title="Choose a new password"
        lead="Every device logged in to your account will be logged out. You then log in with the new password."
      >
        <ErrorSummary errors={errors} />
        <form method="post" action={props.action} novalidate>
          <Csrf token={props.ctx.csrfToken} />
          <Field
            name="password"
            label="New password"
            type="password"
            autocomplete="new-password"
            hint={`At least ${props.minLength} characters. Several words together work well.`}
            minLength={props.minLength}
            error={props.error}
          />
          {props.twoStep ? (
            <Field
              name="code"
              label="Code from your authenticator app"
              hint="Two-step sign-in is on for this account, and a new password does not turn it off. Lost your phone? Type one of your recovery codes instead."
              autocomplete="one-time-code"
              maxLength={40}
              error={props.codeError}
            />
          ) : null}
          <button type="submit" class="button">
            Set the new password
          </button>
        </form>
      </Card>
    </Layout>
  );
}

export type ResetOutcome = 'reset' | 'used' | 'expired' | 'invalid';

export function ResetOutcomePage(props: {
  ctx: PageContext;
  outcome: ResetOutcome;
  /** Set when a recovery code was the second step. */
  recoveryCodesLeft?: number;
}) {
  const { ctx } = props;
  switch (props.outcome) {
    case 'reset':
      return (
        <Layout ctx={ctx} title="Password changed">
          <Card
            title="Your password has been changed"
            lead="Every device that was logged in has been logged out. Log in with your new password."
          >
            {props.recoveryCodesLeft === undefined ? null : (
              <RecoveryCodesLeftNote left={props.recoveryCodesLeft} />
            )}
            <a class="button" href="/login">
              Log in
            </a>
          </Card>
        </Layout>
      );
    case 'used':
      return (
        <Layout ctx={ctx} title="Link already used">
          <Card
            title="This link was already used"
            lead="Each reset link works once. If you still need a new password, ask for another link."
          >
            <a class="button" href="/forgot">
              Ask for a new link
            </a>
          </Card>
        </Layout>
      );
    case 'expired':
      return (
        <Layout ctx={ctx} title="Link expired">
          <Card
            title="This link has expired"
            lead="Reset links work for a short time only. Ask for a new one."
          >
            <a class="button" href="/forgot">
              Ask for a new link
            </a>
          </Card>
        </Layout>
      );
    case 'invalid':
      return (
        <Layout ctx={ctx} title="Link not valid">
          <Card
            title="This link is not valid"
            lead="It may have been replaced by a newer one, copied incompletely, or the account's password or address changed since it was sent."
          >
            <a class="button" href="/forgot">
              Ask for a new link
            </a>
          </Card>
        </Layout>
      );
  }
}

export function EmailChangeConfirmPage(props: {
  ctx: PageContext;
  action: string;
  newEmail: string;
}) {
  return (
    <Layout ctx={props.ctx} title="Confirm your new address">
      <Card
        title="Confirm your new email address"
        lead={`One click and ${props.newEmail} becomes the address of your account.`}
      >
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

export type EmailChangeOutcome = 'changed' | 'already_changed' | 'taken' | 'expired' | 'invalid';

export function EmailChangeOutcomePage(props: {
  ctx: PageContext;
  outcome: EmailChangeOutcome;
  email?: string;
}) {
  const { ctx } = props;
  const next = (
    <a class="button" href={ctx.user ? '/account' : '/login'}>
      {ctx.user ? 'Go to your account' : 'Log in'}
    </a>
  );
  switch (props.outcome) {
    case 'changed':
      return (
        <Layout ctx={ctx} title="Address changed">
          <Card
            title="Your email address has changed"
            lead={`Your account now uses ${props.email ?? 'the new address'}. Log in with it from now on.`}
          >
            {next}
          </Card>
        </Layout>
      );
    case 'already_changed':
      return (
        <Layout ctx={ctx} title="Already changed">
          <Card title="This change is already done" lead="Nothing more to do.">
            {next}
          </Card>
        </Layout>
      );
    case 'taken':
      return (
        <Layout ctx={ctx} title="Address in use">
          <Card
            title="This address already has an account"
            lead="Another account started using this address before you confirmed, so your account keeps its old address."
          >
            {next}
          </Card>
        </Layout>
      );
    case 'expired':
      return (
        <Layout ctx={ctx} title="Link expired">
          <Card
            title="This link has expired"
            lead="Ask for the change again on your account page to get a new link."
          >
            {next}
          </Card>
        </Layout>
      );
    case 'invalid':
      return (
        <Layout ctx={ctx} title="Link not valid">
          <Card
            title="This link is not valid"
            lead="It may have been replaced by a newer request, cancelled, or copied incompletely."
          >
            {next}
          </Card>
        </Layout>
      );
  }
}

/** After a recovery code was used: how many are left, and what to do when few are. */
export function RecoveryCodesLeftNote(props: { left: number }) {
  const count = props.left === 1 ? '1 recovery code' : `${props.left} recovery codes`;
  return (
    <p class="note" id="recovery-codes-left">
      You used a recovery code; {count} left. Each works once.
      {props.left <= 2
        ? ' Make new ones on your account page (two-step sign-in) before you run out.'
        : null}
    </p>
  );
}
