import type { ComponentChildren, VNode } from 'preact';
import { render } from 'preact-render-to-string';

export interface PageContext {
  appName: string;
  csrfToken: string;
  user: { email: string; emailVerified: boolean } | null;
  flash: Flash | null;
  inboxEnabled: boolean;
  contactEnabled: boolean;
}

export interface Flash {
  kind: 'success' | 'info' | 'error';
  message: string;
}

// A small inline icon: no extra route, and no 404 for /favicon.ico in every browser console.
const FAVICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='7' fill='%232f5bd3'/%3E%3Cpath d='M8 17l5 5 11-12' fill='none' stroke='white' stroke-width='4' stroke-linecap='round' stroke-linejoin='round'/%3E%3C/svg%3E";

export function renderPage(node: VNode): string {
  return `<!DOCTYPE html>${render(node)}`;
}

export function Layout(props: { ctx: PageContext; title: string; children: ComponentChildren }) {
  const { ctx } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>{`${props.title} · ${ctx.appName}`}</title>
        <link rel="icon" href={FAVICON} />
        <link rel="stylesheet" href="/static/style.css" />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="site-header">
          <a class="brand" href="/">
            {ctx.appName}
          </a>
          <nav aria-label="Main">
            {ctx.user ? (
              <>
                <a href="/account">Account</a>
                <form method="post" action="/logout" class="inline">
                  <input type="hidden" name="_csrf" value={ctx.csrfToken} />
                  <button type="submit" class="link">
                    Log out
                  </button>
                </form>
              </>
            ) : (
              <>
                <a href="/login">Log in</a>
                <a href="/signup">Sign up</a>
              </>
            )}
            {ctx.contactEnabled ? <a href="/contact">Contact</a> : null}
            {ctx.inboxEnabled ? <a href="/_inbox">Inbox</a> : null}
          </nav>
        </header>
        <main id="main" tabIndex={-1}>
          {ctx.flash ? (
            <div
              class={`flash flash-${ctx.flash.kind}`}
              role={ctx.flash.kind === 'error' ? 'alert' : 'status'}
            >
              {ctx.flash.message}
            </div>
          ) : null}
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function Card(props: {
  title: string;
  children: ComponentChildren;
  lead?: ComponentChildren;
}) {
  return (
    <section class="card" aria-labelledby="page-title">
      <h1 id="page-title">{props.title}</h1>
      {props.lead ? <p class="lead">{props.lead}</p> : null}
      {props.children}
    </section>
  );
}

export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

export function Field(props: {
  name: string;
  /** The element's id; `field-<name>` unless a page has two forms with fields of one name. */
  id?: string;
  label: string;
  type?: string;
  value?: string;
  error?: string | undefined;
  hint?: string;
  autocomplete?: string;
  required?: boolean;
  inputMode?: string;
  pattern?: string;
  maxLength?: number;
  minLength?: number;
  autofocus?: boolean;
  /** An error shown elsewhere (e.g. one message for a whole form) that also concerns this field. */
  invalidBy?: string;
}) {
  const id = props.id ?? `field-${props.name}`;
  const describedBy = [
    props.hint ? `${id}-hint` : null,
    props.error ? `${id}-error` : null,
    props.invalidBy ?? null,
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <div class={props.error ? 'field has-error' : 'field'}>
      <label for={id}>{props.label}</label>
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      {props.error ? (
        <p class="error" id={`${id}-error`}>
          {props.error}
        </p>
      ) : null}
      <input
        id={id}
        name={props.name}
        type={(props.type ?? 'text') as 'text'}
        value={props.value ?? ''}
        autocomplete={props.autocomplete}
        required={props.required ?? true}
        inputMode={props.inputMode as never}
        pattern={props.pattern}
        maxLength={props.maxLength}
        minLength={props.minLength}
        autofocus={props.autofocus}
        aria-invalid={props.error || props.invalidBy ? 'true' : undefined}
        aria-describedby={describedBy || undefined}
      />
    </div>
  );
}

export function ErrorSummary(props: { errors: Array<{ field: string; message: string }> }) {
  if (props.errors.length === 0) return null;
  return (
    <div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabIndex={-1}>
      <h2 id="error-summary-title">There is a problem</h2>
      <ul>
        {props.errors.map((e) => (
          <li key={e.field}>
            <a href={`#field-${e.field}`}>{e.message}</a>
          </li>
        ))}
      </ul>
    </div>
  );
}
