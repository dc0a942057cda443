import type { ContactMessage } from '../../db/schema.ts';
import { Card, Csrf, ErrorSummary, Field, Layout, type PageContext } from './layout.tsx';
import { CodeEntryPage, ExpiredLinkPage } from './pages.tsx';

type Errors = Partial<Record<'name' | 'email' | 'message' | 'code', string>>;

function errorList(errors: Errors) {
  return Object.entries(errors)
    .filter((e): e is [string, string] => Boolean(e[1]))
    .map(([field, message]) => ({ field, message }));
}

export function ContactPage(props: {
  ctx: PageContext;
  values?: { name?: string; email?: string; message?: string };
  errors?: Errors;
  limits: { name: number; message: number };
}) {
  const errors = props.errors ?? {};
  const values = props.values ?? {};
  const messageDescribedBy = ['field-message-hint', errors.message ? 'field-message-error' : null]
    .filter(Boolean)
    .join(' ');
  return (
    <Layout ctx={props.ctx} title="Contact us">
      <Card
        title="Contact us"
        lead="We will email you a link to confirm your address. Your message reaches us only after you confirm."
      >
        <ErrorSummary errors={errorList(errors)} />
        <form method="post" action="/contact" novalidate>
          <Csrf token={props.ctx.csrfToken} />
          <Field
            name="name"
            label="Your name"
            value={values.name}
            error={errors.name}
            autocomplete="name"
            maxLength={props.limits.name}
          />
          <Field
            name="email"
            label="Your email address"
            type="email"
            value={values.email}
            error={errors.email}
            autocomplete="email"
            maxLength={254}
          />
          <div class={errors.message ? 'field has-error' : 'field'}>
            <label for="field-message">Message</label>
            <p class="hint" id="field-message-hint">
              Up to {props.limits.message} characters.
            </p>
            {errors.message ? (
              <p class="error" id="field-message-error">
                {errors.message}
              </p>
            ) : null}
            <textarea
              id="field-message"
              name="message"
              rows={8}
              required
              maxLength={props.limits.message}
              aria-invalid={errors.message ? 'true' : undefined}
              aria-describedby={messageDescribedBy}
            >
              {values.message ?? ''}
            </textarea>
          </div>
          {/* People never see this field; bots fill it in. */}
          <div class="honeypot" aria-hidden="true">
            <label for="field-website">Leave this field empty</label>
            <input id="field-website" name="website" type="text" tabIndex={-1} autocomplete="off" />
          </div>
          <button type="submit" class="button">
            Send
          </button>
        </form>
      </Card>
    </Layout>
  );
}

export function ContactPendingPage(props: { ctx: PageContext; email: string }) {
  return (
    <Layout ctx={props.ctx} title="Confirm your message">
      <Card title="One more step: confirm your address">
        <p>
          We sent a message to <strong>{props.email}</strong>. Open the link in it, or type its
          8-digit code, and your message will be on its way to us.
        </p>
        <div class="actions">
          <a class="button" href={`/contact/confirm?email=${encodeURIComponent(props.email)}`}>
            Enter the code
          </a>
          {props.ctx.inboxEnabled ? (
            <a class="button secondary" href="/_inbox">
              Open the development inbox
            </a>
          ) : null}
        </div>
      </Card>
    </Layout>
  );
}

export function ContactConfirmPage(props: {
  ctx: PageContext;
  action: string;
  contact: ContactMessage;
}) {
  return (
    <Layout ctx={props.ctx} title="Confirm your message">
      <Card
        title="Send your message?"
        lead="Confirm that this message is yours and it will be delivered."
      >
        <dl class="details">
          <dt>From</dt>
          <dd>
            {props.contact.name} ({props.contact.email})
          </dd>
          <dt>Message</dt>
          <dd class="message-body">{props.contact.message}</dd>
        </dl>
        <form method="post" action={props.action}>
          <Csrf token={props.ctx.csrfToken} />
          <button type="submit" class="button" autofocus>
            Confirm and send
          </button>
        </form>
      </Card>
    </Layout>
  );
}

export type ContactOutcome = 'accepted' | 'already_accepted' | 'expired' | 'invalid' | 'resent';

export function ContactOutcomePage(props: {
  ctx: PageContext;
  outcome: ContactOutcome;
  token?: string;
}) {
  const { ctx } = props;
  switch (props.outcome) {
    case 'accepted':
      return (
        <Layout ctx={ctx} title="Message sent">
          <Card
            title="Thank you: your message is on its way"
            lead="We will reply to the address you confirmed."
          >
            <a class="button secondary" href="/">
              Home
            </a>
          </Card>
        </Layout>
      );
    case 'already_accepted':
      return (
        <Layout ctx={ctx} title="Already sent">
          <Card
            title="This message was already submitted"
            lead="It was delivered once; nothing more to do."
          >
            <a class="button secondary" href="/">
              Home
            </a>
          </Card>
        </Layout>
      );
    case 'expired':
      return (
        <ExpiredLinkPage
          ctx={ctx}
          lead="Your message is still waiting. We can send a fresh link to the same address."
          resendAction="/contact/resend"
          token={props.token}
        />
      );
    case 'resent':
      return (
        <Layout ctx={ctx} title="Check your inbox">
          <Card
            title="Check your inbox"
            lead="We sent a fresh link and code for your message. Earlier links no longer work."
          >
            <a class="button" href="/contact/confirm">
              Enter the code
            </a>
          </Card>
        </Layout>
      );
    case 'invalid':
      return (
        <Layout ctx={ctx} title="Link not valid">
          <Card
            title="This link is not valid"
            lead="It may have been copied incompletely, replaced by a newer one, or the message was removed after a day unconfirmed."
          >
            <a class="button" href="/contact">
              Write a new message
            </a>
          </Card>
        </Layout>
      );
  }
}

export function ContactCodePage(props: { ctx: PageContext; email?: string; errors?: Errors }) {
  return (
    <CodeEntryPage
      ctx={props.ctx}
      action="/contact/confirm"
      lead="Type the 8-digit code from the message we sent about your contact form message."
      submitLabel="Confirm and send"
      email={props.email}
      errors={props.errors}
    />
  );
}

export function AdminContactPage(props: { ctx: PageContext; messages: ContactMessage[] }) {
  return (
    <Layout ctx={props.ctx} title="Contact messages">
      <section class="inbox" aria-labelledby="admin-title">
        <h1 id="admin-title">Contact messages</h1>
        <p class="lead">Accepted messages, newest first. Every sender confirmed their address.</p>
        {props.messages.length === 0 ? (
          <div class="empty">
            <p>
              <strong>No accepted messages yet.</strong>
            </p>
          </div>
        ) : (
          <ul class="contact-list">
            {props.messages.map((m) => (
              <li key={m.id} class="card">
                <p>
                  <strong>{m.name}</strong> &lt;<a href={`mailto:${m.email}`}>{m.email}</a>&gt;{' '}
                  <time dateTime={new Date(m.accepted_at ?? m.created_at).toISOString()}>
                    {new Date(m.accepted_at ?? m.created_at)
                      .toISOString()
                      .replace('T', ' ')
                      .slice(0, 16)}{' '}
                    UTC
                  </time>
                </p>
                <p class="message-body">{m.message}</p>
              </li>
            ))}
          </ul>
        )}
      </section>
    </Layout>
  );
}
