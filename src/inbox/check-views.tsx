// The parts of the inbox pages that show a message's HTML at three widths and its checks.
import type { CheckLevel, MessageChecks } from './checks/index.ts';

const LEVEL_LABEL: Record<CheckLevel, string> = {
  error: 'Error',
  warning: 'Warning',
  info: 'Note',
  ok: 'Pass',
};

export const WIDTHS = [
  { id: 'phone', label: 'Phone', px: 375 },
  { id: 'tablet', label: 'Tablet', px: 768 },
  { id: 'desktop', label: 'Desktop', px: null },
] as const;

/**
 * The HTML part in a sandboxed frame with a phone / tablet / desktop switch. The switch is radio
 * buttons styled with :has(), so it works without JavaScript.
 */
export function HtmlPreview(props: { id: string; src: string; title: string }) {
  return (
    <div class="preview" data-preview={props.id}>
      <fieldset class="widths">
        <legend>Width</legend>
        {WIDTHS.map((w) => (
          <span key={w.id}>
            <input
              type="radio"
              name={`width-${props.id}`}
              id={`width-${props.id}-${w.id}`}
              value={w.id}
              class={`width-${w.id}`}
              checked={w.id === 'desktop'}
            />
            <label for={`width-${props.id}-${w.id}`}>
              {w.label}
              {w.px ? ` (${w.px} px)` : ''}
            </label>
          </span>
        ))}
      </fieldset>
      <div class="frame-box">
        <iframe
          class="message-frame"
          title={props.title}
          src={props.src}
          sandbox="allow-popups allow-popups-to-escape-sandbox"
        />
      </div>
    </div>
  );
}

export function ChecksSection(props: { checks: MessageChecks; headingId: string }) {
  const { checks } = props;
  const failing = (checks.css?.features ?? []).filter((f) => f.level !== 'info');
  const accepted = (checks.css?.features ?? []).filter((f) => f.reason);
  return (
    <section class="checks" aria-labelledby={props.headingId}>
      <h2 id={props.headingId}>
        Checks{' '}
        <span class={`badge ${checks.errors ? 'error' : checks.warnings ? 'warning' : 'ok'}`}>
          {checks.errors} error{checks.errors === 1 ? '' : 's'}, {checks.warnings} warning
          {checks.warnings === 1 ? '' : 's'}
        </span>
      </h2>
      <ul class="check-items">
        {checks.items.map((item) => (
          <li key={item.id} class={`check ${item.level}`} data-check={item.id}>
            <span class={`badge ${item.level}`}>{LEVEL_LABEL[item.level]}</span>{' '}
            <span class="check-title">{item.title}</span>
            {item.detail ? <p class="check-detail">{item.detail}</p> : null}
          </li>
        ))}
      </ul>
      {failing.length > 0 ? (
        <details class="check-more" open>
          <summary>Unsupported HTML and CSS ({failing.length})</summary>
          <table class="headers">
            <thead>
              <tr>
                <th scope="col">Feature</th>
                <th scope="col">Not supported by</th>
              </tr>
            </thead>
            <tbody>
              {failing.map((f) => (
                <tr key={f.feature} class={`check ${f.level}`}>
                  <th scope="row">
                    <span class={`badge ${f.level}`}>{LEVEL_LABEL[f.level]}</span> {f.feature}
                  </th>
                  <td>{f.clients.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
      {accepted.length > 0 ? (
        <details class="check-more">
          <summary>Accepted client differences ({accepted.length})</summary>
          <ul>
            {accepted.map((f) => (
              <li key={f.feature}>
                <strong>{f.feature}</strong> ({f.clients.join(', ')}): {f.reason}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
      <details class="check-more">
        <summary>Links ({checks.links.length})</summary>
        {checks.links.length === 0 ? (
          <p>No links.</p>
        ) : (
          <ul class="link-list">
            {checks.links.map((link) => (
              <li key={link.url} class={`check ${link.level}`}>
                <span class={`badge ${link.level}`}>{LEVEL_LABEL[link.level]}</span>{' '}
                <code class="link-url">{link.url}</code> <span>{link.message}</span>
              </li>
            ))}
          </ul>
        )}
      </details>
      {checks.spam.status === 'scored' && checks.spam.rules.length > 0 ? (
        <details class="check-more">
          <summary>SpamAssassin rules ({checks.spam.rules.length})</summary>
          <table class="headers">
            <tbody>
              {checks.spam.rules.map((rule) => (
                <tr key={rule.name}>
                  <th scope="row">{rule.name}</th>
                  <td>{rule.score}</td>
                  <td>{rule.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
    </section>
  );
}
