import type { ComponentChildren } from 'preact';

export interface Branding {
  appName: string;
  brandColor: string;
  baseUrl: string;
}

// Email clients ignore <style> unevenly, so every style is inline and the layout is a table.
const font = "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";

export function EmailLayout(props: {
  branding: Branding;
  preheader: string;
  children: ComponentChildren;
  footer: string;
}) {
  const { branding } = props;
  return (
    <table
      role="presentation"
      width="100%"
      cellPadding="0"
      cellSpacing="0"
      style={{ backgroundColor: '#f4f5f7', width: '100%' }}
    >
      <tr>
        <td align="center" style={{ padding: '24px 12px' }}>
          {/* The preheader is visible: clients show the first text as the preview, and hiding it
              needs display:none, which Gmail's mobile web client ignores. */}
          <p
            style={{
              margin: '0 0 12px',
              maxWidth: '560px',
              fontFamily: font,
              fontSize: '13px',
              lineHeight: '18px',
              color: '#59636e',
            }}
          >
            {props.preheader}
          </p>
          <table
            role="presentation"
            width="560"
            cellPadding="0"
            cellSpacing="0"
            style={{
              maxWidth: '560px',
              width: '100%',
              backgroundColor: '#ffffff',
              border: '1px solid #e3e5e8',
            }}
          >
            <tr>
              <td
                style={{
                  padding: '20px 28px',
                  borderBottom: `3px solid ${branding.brandColor}`,
                  fontFamily: font,
                  fontSize: '18px',
                  fontWeight: 'bold',
                  color: '#1f2328',
                }}
              >
                {branding.appName}
              </td>
            </tr>
            <tr>
              <td
                style={{
                  padding: '28px',
                  fontFamily: font,
                  fontSize: '16px',
                  lineHeight: '24px',
                  color: '#1f2328',
                }}
              >
                {props.children}
              </td>
            </tr>
            <tr>
              <td
                style={{
                  padding: '16px 28px 24px',
                  fontFamily: font,
                  fontSize: '13px',
                  lineHeight: '20px',
                  color: '#59636e',
                  borderTop: '1px solid #e3e5e8',
                }}
              >
                {props.footer}
              </td>
            </tr>
          </table>
        </td>
      </tr>
    </table>
  );
}

export function Button(props: { href: string; color: string; children: ComponentChildren }) {
  return (
    <table role="presentation" cellPadding="0" cellSpacing="0" style={{ margin: '24px 0' }}>
      <tr>
        <td style={{ backgroundColor: props.color }}>
          <a
            href={props.href}
            style={{
              display: 'inline-block',
              padding: '12px 24px',
              fontFamily: font,
              fontSize: '16px',
              fontWeight: 'bold',
              color: '#ffffff',
              textDecoration: 'none',
            }}
          >
            {props.children}
          </a>
        </td>
      </tr>
    </table>
  );
}

export function CodeBox(props: { code: string }) {
  // Spaced in two groups of four so it is easy to read and type on another device.
  const spaced = `${props.code.slice(0, 4)} ${props.code.slice(4)}`;
  return (
    <p
      style={{
        fontFamily: "'SFMono-Regular', Consolas, 'Liberation Mono', Menlo, monospace",
        fontSize: '28px',
        letterSpacing: '4px',
        fontWeight: 'bold',
        margin: '8px 0 16px',
        color: '#1f2328',
      }}
    >
      {spaced}
    </p>
  );
}

/**
 * A link that shows its own address, for copying when the button does not work. The address is
 * one unbroken word (a 43-character token ends it), which a table cell widens to fit: 570-790 px
 * on a 375 px phone. Cut into runs of 16 characters set inline-block, it can wrap between any
 * two, in every client (word-break and table-layout, which would also do, are unsupported in some
 * Outlooks), and it still copies as one string: the runs have nothing between them.
 */
export function AddressLink(props: { href: string; color: string }) {
  const runs = props.href.match(/.{1,16}/gsu) ?? [];
  return (
    <a href={props.href} style={{ color: props.color }}>
      {runs.map((run, i) => (
        <span key={i} style={{ display: 'inline-block' }}>
          {run}
        </span>
      ))}
    </a>
  );
}

export const paragraph = { margin: '0 0 16px' };
export const small = { margin: '0 0 16px', fontSize: '14px', color: '#59636e' };
