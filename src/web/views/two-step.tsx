// Pages of two-step sign-in (docs/decisions/014): the code at login, setting it up (QR code and
// typed secret), the recovery codes shown once, and turning it off or making new codes.
import QRCode from 'qrcode';
import type { Enrolment } from '../../accounts/two-step.ts';
import { Card, Csrf, ErrorSummary, Field, Layout, type PageContext } from './layout.tsx';

/** Errors of the two-step forms, keyed by their field's id (without `field-`). */
export type TwoStepErrors = Partial<
  Record<
    | 'setup-password'
    | 'setup-code'
    | 'off'
    | 'off-password'
    | 'off-code'
    | 'new-password'
    | 'new-code',
    string
  >
>;

function errorList(errors: Partial<Record<string, string>>) {
  return Object.entries(errors)
    .filter((e): e is [string, string] => Boolean(e[1]))
    .map(([field, message]) => ({ field, message }));
}

function Intent(props: { value: string }) {
  return <input type="hidden" name="intent" value={props.value} />;
}

const QUIET_ZONE = 4;

/**
 * The QR code as inline SVG drawn from the modules `qrcode` computes: no image route, no data:
 * URL and no markup from outside, so the strict CSP needs nothing extra. One path, a run of dark
 * modules per rectangle; the white margin keeps it scannable in dark mode too.
 */
export function QrCode(props: { text: string; label: string }) {
  const { modules } = QRCode.create(props.text, { errorCorrectionLevel: 'M' });
  const size = modules.size;
  let path = '';
  for (let y = 0; y < size; y += 1) {
    let x = 0;
    while (x < size) {
      if (!modules.get(y, x)) {
        x += 1;
        continue;
      }
      const start = x;
      while (x < size && modules.get(y, x)) x += 1;
      path += `M${start + QUIET_ZONE} ${y + QUIET_ZONE}h${x - start}v1h-${x - start}z`;
    }
  }
  const box = size + QUIET_ZONE * 2;
  return (
    <svg
      class="qr"
      xmlns="http://www.w3.org/2000/svg"
      viewBox={`0 0 ${box} ${box}`}
      role="img"
      aria-label={props.label}
      shape-rendering="crispEdges"
    >
      <rect width={box} height={box} fill="#ffffff" />
      <path d={path} fill="#000000" />
    </svg>
  );
}

export function TwoStepLoginPage(props: {
  ctx: PageContext;
  /** The person said they will type a recovery code: letters allowed, no numeric keypad. */
  recovery?: boolean;
  error?: string;
}) {
  const { ctx } = props;
  return (
    <Layout ctx={ctx} title="Two-step sign-in">
      <Card
        title="Enter your code"
        lead={
          props.recovery
            ? 'Type one of the recovery codes you saved when you turned on two-step sign-in. Each one works once.'
            : `Your password was right. Now open your authenticator app and type the code it shows for ${ctx.appName}.`
        }
      >
        <ErrorSummary errors={props.error ? [{ field: 'code', message: props.error }] : []} />
        <form method="post" action="/login/two-step" novalidate>
          <Csrf token={ctx.csrfToken} />
          {props.recovery ? (
            <Field
              name="code"
              label="Recovery code"
              hint="Ten letters and digits, for example abcde-23456."
              autocomplete="off"
              maxLength={40}
              error={props.error}
              autofocus
            />
          ) : (
            <Field
              name="code"
              label="Code from your authenticator app"
              hint="6 digits. A recovery code works here too."
              autocomplete="one-time-code"
              inputMode="numeric"
              maxLength={40}
              error={props.error}
              autofocus
            />
          )}
          <button type="submit" class="button">
            Log in
          </button>
        </form>
        <p class="alt">
          {props.recovery ? (
            <a href="/login/two-step">Use a code from your app instead</a>
          ) : (
            <>
              Lost your phone? <a href="/login/two-step?recovery=1">Use a recovery code</a>
            </>
          )}
        </p>
        <p class="note">
          Lost both your phone and your recovery codes? The site's operator can turn two-step
          sign-in off once you have shown them the account is yours.
        </p>
      </Card>
    </Layout>
  );
}

/** `required`: the site requires two-step sign-in (REQUIRE_TWO_STEP), so there is no "Not now". */
export function TwoStepIntroPage(props: { ctx: PageContext; required?: boolean }) {
  const { ctx } = props;
  return (
    <Layout ctx={ctx} title="Two-step sign-in">
      <Card
        title="Set up two-step sign-in"
        lead="Logging in will take your password and a 6-digit code from an authenticator app on your phone, so a stolen password alone is not enough."
      >
        <p>
          Any authenticator app works: Google Authenticator, Microsoft Authenticator, 1Password,
          Bitwarden, Aegis and others. You will also get ten recovery codes, for the day you lose
          your phone.
        </p>
        {props.required ? (
          <p id="two-step-required">
            This site requires two-step sign-in: your account can be used once it is set up.
          </p>
        ) : null}
        <form method="post" action="/account/two-step">
          <Csrf token={ctx.csrfToken} />
          <Intent value="start" />
          <div class="actions">
            <button type="submit" class="button">
              Set up two-step sign-in
            </button>
            {props.required ? null : (
              <a class="button secondary" href="/account">
                Not now
              </a>
            )}
          </div>
        </form>
      </Card>
    </Layout>
  );
}

export function TwoStepSetupPage(props: {
  ctx: PageContext;
  enrolment: Enrolment;
  errors?: TwoStepErrors;
}) {
  const { ctx, enrolment } = props;
  const errors = props.errors ?? {};
  return (
    <Layout ctx={ctx} title="Set up two-step sign-in">
      <Card
        title="Set up two-step sign-in"
        lead="Add this account to your authenticator app, then type the code the app shows to turn two-step sign-in on."
      >
        <ErrorSummary errors={errorList(errors)} />
        <ol class="steps">
          <li class="step">
            <p>Scan this QR code with your authenticator app:</p>
            <QrCode
              text={enrolment.uri}
              label={`QR code that adds ${ctx.appName} to an authenticator app`}
            />
            <p class="note">
              On this phone? <a href={enrolment.uri}>Open it in your authenticator app</a>.
            </p>
          </li>
          <li class="step">
            <p>Cannot scan? Type this key into the app (time-based, 6 digits):</p>
            <p>
              <code class="secret" id="two-step-secret">
                {enrolment.groupedSecret}
              </code>
            </p>
          </li>
          <li class="step">
            <p>Type your password and the code the app shows now:</p>
            <form method="post" action="/account/two-step" novalidate>
              <Csrf token={ctx.csrfToken} />
              <Intent value="confirm" />
              <Field
                id="field-setup-password"
                name="password"
                label="Current password"
                type="password"
                autocomplete="current-password"
                error={errors['setup-password']}
              />
              <Field
                id="field-setup-code"
                name="code"
                label="Code from your authenticator app"
                hint="6 digits"
                autocomplete="one-time-code"
                inputMode="numeric"
                maxLength={12}
                error={errors['setup-code']}
              />
              <div class="actions">
                <button type="submit" class="button">
                  Turn on two-step sign-in
                </button>
                <a class="button secondary" href="/account">
                  Cancel
                </a>
              </div>
            </form>
          </li>
        </ol>
      </Card>
    </Layout>
  );
}

/** Shown once, right after they are made: they are stored only as hashes. */
export function RecoveryCodesPage(props: {
  ctx: PageContext;
  codes: string[];
  reason: 'enabled' | 'regenerated';
}) {
  const { ctx } = props;
  return (
    <Layout ctx={ctx} title="Save your recovery codes">
      <Card
        title={
          props.reason === 'enabled'
            ? 'Two-step sign-in is on: save your recovery codes'
            : 'Save your new recovery codes'
        }
        lead={
          props.reason === 'enabled'
            ? 'From now on, logging in takes your password and a code from your app.'
            : 'Your earlier recovery codes no longer work.'
        }
      >
        <div class="banner" role="status">
          <p>
            <strong>Save these codes now: this is the only time they are shown.</strong> Print them
            or keep them in your password manager. If you lose your phone, each code lets you log in
            once.
          </p>
        </div>
        <ul class="recovery-codes" aria-label="Recovery codes">
          {props.codes.map((code) => (
            <li key={code}>
              <code>{code}</code>
            </li>
          ))}
        </ul>
        <a class="button" href="/account">
          I have saved them
        </a>
      </Card>
    </Layout>
  );
}

export function TwoStepManagePage(props: {
  ctx: PageContext;
  recoveryCodesLeft: number;
  errors?: TwoStepErrors;
  /** The site requires two-step sign-in (REQUIRE_TWO_STEP): it cannot be turned off here. */
  required?: boolean;
}) {
  const { ctx } = props;
  const errors = props.errors ?? {};
  const left = props.recoveryCodesLeft;
  return (
    <Layout ctx={ctx} title="Two-step sign-in">
      <Card
        title="Two-step sign-in is on"
        lead="Logging in takes your password and a code from your authenticator app."
      >
        <ErrorSummary errors={errorList(errors)} />
        <p id="recovery-codes-left">
          {left === 1 ? '1 recovery code left.' : `${left} recovery codes left.`}
        </p>
        <p>Both forms below ask for your password and a code from your app (or a recovery code).</p>
      </Card>

      <section class="card" aria-labelledby="new-codes-title" id="new-codes">
        <h2 class="section-title" id="new-codes-title">
          New recovery codes
        </h2>
        <p>Makes ten new codes; the ones you have now stop working.</p>
        <form method="post" action="/account/two-step" novalidate>
          <Csrf token={ctx.csrfToken} />
          <Intent value="regenerate" />
          <Field
            id="field-new-password"
            name="password"
            label="Current password"
            type="password"
            autocomplete="current-password"
            error={errors['new-password']}
          />
          <Field
            id="field-new-code"
            name="code"
            label="Code from your authenticator app"
            hint="6 digits, or a recovery code"
            autocomplete="one-time-code"
            maxLength={40}
            error={errors['new-code']}
          />
          <button type="submit" class="button secondary">
            Make new recovery codes
          </button>
        </form>
      </section>

      <section class="card" aria-labelledby="turn-off-title" id="turn-off">
        <h2 class="section-title" id="turn-off-title">
          Turn off two-step sign-in
        </h2>
        {props.required ? (
          <p id="field-off">
            This site requires two-step sign-in, so it cannot be turned off. If you lose both your
            phone and your recovery codes, the site's operator can turn it off for you.
          </p>
        ) : (
          <>
            <p>
              Logging in will take only your password. We will email you that it was turned off.
            </p>
            <form method="post" action="/account/two-step" novalidate>
              <Csrf token={ctx.csrfToken} />
              <Intent value="disable" />
              <Field
                id="field-off-password"
                name="password"
                label="Current password"
                type="password"
                autocomplete="current-password"
                error={errors['off-password']}
              />
              <Field
                id="field-off-code"
                name="code"
                label="Code from your authenticator app"
                hint="6 digits, or a recovery code"
                autocomplete="one-time-code"
                maxLength={40}
                error={errors['off-code']}
              />
              <button type="submit" class="button danger">
                Turn off two-step sign-in
              </button>
            </form>
          </>
        )}
      </section>
      <p class="alt">
        <a href="/account">Back to your account</a>
      </p>
    </Layout>
  );
}
