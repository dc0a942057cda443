import { describe, expect, it } from 'vitest';
import { checkCss } from '../../src/inbox/checks/css.ts';
import { parseHtml } from '../../src/inbox/checks/html.ts';
import { createRouteTable, runChecks } from '../../src/inbox/checks/index.ts';
import { checkLinks, isLocalHost } from '../../src/inbox/checks/links.ts';
import { checkStructure } from '../../src/inbox/checks/structure.ts';

const headers = [
  { name: 'date', value: 'Fri, 27 Nov 2026 12:00:00 +0000' },
  { name: 'message-id', value: '<a@b>' },
];

function appRoutes() {
  const routes = createRouteTable();
  routes.add(['GET', 'HEAD'], '/verify/:token');
  routes.add('GET', '/login');
  routes.add('POST', '/api/signup');
  return routes;
}

function page(body: string, lang = ' lang="en"') {
  return `<!DOCTYPE html><html${lang}><head><title>t</title></head><body>${body}</body></html>`;
}

describe('HTML and CSS support (caniemail data)', () => {
  it('makes a feature Gmail, Outlook or Apple Mail lacks an error, naming the clients', () => {
    const report = checkCss(page('<div style="display:flex;position:absolute">x</div>'));
    const position = report.features.find((f) => f.feature === 'position');
    expect(position).toMatchObject({ level: 'error', support: 'unsupported' });
    expect(position?.clients).toEqual(expect.arrayContaining(['gmail.desktop-webmail']));
    const flex = report.features.find((f) => f.feature === 'display:flex');
    expect(flex?.level).toBe('error');
    expect(flex?.clients).toContain('outlook.windows');
    expect(report.score).toBeLessThan(100);
    expect(report.clientsChecked).toBeGreaterThanOrEqual(30);
  });

  it('scores plain tables and inline colours higher than flex and positioning', () => {
    const plain = checkCss(
      page('<table role="presentation"><tr><td style="color:#111">x</td></tr></table>'),
    );
    const fancy = checkCss(
      page('<div style="display:flex;position:absolute;border-radius:4px">x</div>'),
    );
    expect(plain.features.filter((f) => f.level === 'error')).toEqual([]);
    expect(plain.score).toBeGreaterThan(fancy.score);
  });

  it('reports the accepted differences (<body>, role) at info level with the reason', () => {
    const report = checkCss(page('<table role="presentation"><tr><td>x</td></tr></table>'));
    const body = report.features.find(
      (f) => f.feature === '<body> element' && f.support === 'unsupported',
    );
    expect(body?.level).toBe('info');
    expect(body?.reason).toMatch(/replace it with their own/);
  });
});

describe('links', () => {
  const options = { baseUrl: 'https://app.example.com', routes: appRoutes() };

  it('resolves links into the app against its GET routes', () => {
    const doc = parseHtml(
      page(
        '<a href="https://app.example.com/verify/abc">ok</a> <a href="https://app.example.com/verfy/abc">typo</a> <a href="https://app.example.com/api/signup">post only</a>',
      ),
    );
    const links = checkLinks(doc, null, options);
    expect(links.find((l) => l.text === 'ok')).toMatchObject({
      kind: 'app',
      level: 'ok',
      route: '/verify/:token',
    });
    expect(links.find((l) => l.text === 'typo')).toMatchObject({ kind: 'app', level: 'error' });
    expect(links.find((l) => l.text === 'typo')?.message).toContain('/verfy/abc');
    expect(links.find((l) => l.text === 'post only')?.level).toBe('error');
  });

  it('flags local and private addresses when the app is not local, relative and javascript: links', () => {
    const doc = parseHtml(
      page(
        '<a href="http://localhost:3000/verify/x">l</a><a href="http://192.168.1.4/x">p</a><a href="/verify/x">r</a><a href="javascript:alert(1)">j</a><a href="mailto:a@b.c">m</a><a href="https://other.example/">e</a><a href="http://other.example/">h</a>',
      ),
    );
    const byText = Object.fromEntries(checkLinks(doc, null, options).map((l) => [l.text, l]));
    expect(byText.l).toMatchObject({ kind: 'local', level: 'error' });
    expect(byText.p).toMatchObject({ kind: 'local', level: 'error' });
    expect(byText.r).toMatchObject({ kind: 'other', level: 'error' });
    expect(byText.j).toMatchObject({ kind: 'other', level: 'error' });
    expect(byText.m).toMatchObject({ kind: 'mailto', level: 'ok' });
    expect(byText.e).toMatchObject({ kind: 'external', level: 'ok' });
    expect(byText.h).toMatchObject({ kind: 'external', level: 'warning' });
  });

  it('accepts other local addresses (a warning) when the app itself runs locally', () => {
    const doc = parseHtml(page('<a href="http://127.0.0.1:9999/x">l</a>'));
    const [link] = checkLinks(doc, null, { baseUrl: 'http://localhost:3000', routes: appRoutes() });
    expect(link).toMatchObject({ kind: 'local', level: 'warning' });
  });

  it('lists links of the text part, merged with the same links in the HTML', () => {
    const doc = parseHtml(page('<a href="https://app.example.com/login">Log in</a>'));
    const links = checkLinks(
      doc,
      'Log in at https://app.example.com/login. Or https://app.example.com/nope',
      options,
    );
    expect(links).toHaveLength(2);
    expect(links[0]).toMatchObject({ url: 'https://app.example.com/login', in: ['html', 'text'] });
    expect(links[1]).toMatchObject({ in: ['text'], level: 'error' });
  });

  it('knows local and private hosts', () => {
    for (const host of [
      'localhost',
      'a.localhost',
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '[::1]',
      'fd00::1',
      '169.254.1.1',
    ]) {
      expect(isLocalHost(host), host).toBe(true);
    }
    for (const host of ['example.com', '8.8.8.8', '172.32.0.1', '2001:db8::1']) {
      expect(isLocalHost(host), host).toBe(false);
    }
  });
});

describe('structure', () => {
  function structure(html: string | null, text: string | null, extra = {}) {
    return checkStructure({
      document: html === null ? null : parseHtml(html),
      html,
      text,
      headers,
      size: 1234,
      ...extra,
    });
  }
  const level = (items: ReturnType<typeof structure>, id: string) =>
    items.find((i) => i.id === id)?.level;

  it('wants a text part, Message-ID, Date, lang and alt text', () => {
    const good = structure(page('<img src="a.png" alt="Logo"><p>hi</p>'), 'hi');
    for (const id of [
      'text-part',
      'message-id',
      'date',
      'lang',
      'alt-text',
      'html-size',
      'dark-mode',
    ]) {
      expect(level(good, id), id).toBe('ok');
    }
    const bad = structure(page('<img src="a.png"><img src="b.png" alt="">', ''), null, {
      headers: [],
    });
    expect(level(bad, 'text-part')).toBe('error');
    expect(level(bad, 'message-id')).toBe('error');
    expect(level(bad, 'date')).toBe('error');
    expect(level(bad, 'lang')).toBe('error');
    const alt = bad.find((i) => i.id === 'alt-text');
    expect(alt).toMatchObject({ level: 'error', title: '1 image without alt text' });
    expect(alt?.detail).toContain('a.png');
  });

  it('fails HTML over 100 KB (Gmail clips at 102 KB)', () => {
    const big = structure(page(`<p>${'x'.repeat(101 * 1024)}</p>`), 'x');
    expect(big.find((i) => i.id === 'html-size')).toMatchObject({ level: 'error' });
    expect(big.find((i) => i.id === 'html-size')?.title).toMatch(/KB/);
  });

  it('fails text whose colour is set without its background (unreadable in dark mode)', () => {
    const half = structure(
      page('<p style="color:#222222">dark text on the client background</p>'),
      'x',
    );
    expect(half.find((i) => i.id === 'dark-mode')).toMatchObject({ level: 'error' });
    expect(half.find((i) => i.id === 'dark-mode')?.detail).toContain('dark text on the client');
    const both = structure(
      page('<table bgcolor="#ffffff"><tr><td style="color:#222">set together</td></tr></table>'),
      'x',
    );
    expect(both.find((i) => i.id === 'dark-mode')?.level).toBe('ok');
    const neither = structure(page('<p>client colours</p>'), 'x');
    expect(neither.find((i) => i.id === 'dark-mode')?.level).toBe('ok');
  });

  it('warns about low contrast', () => {
    const items = structure(page('<div style="background:#ffffff;color:#bbbbbb">pale</div>'), 'x');
    expect(items.find((i) => i.id === 'contrast')).toMatchObject({ level: 'warning' });
  });
});

describe('runChecks', () => {
  it('counts errors and warnings and says when spam is not checked', async () => {
    const html = page('<p style="color:#222">x</p><a href="https://app.example.com/nope">n</a>');
    const checks = await runChecks(
      { html, text: 'x', headers, raw: Buffer.from(html) },
      { baseUrl: 'https://app.example.com', routes: appRoutes(), spamd: null },
    );
    expect(checks.spam).toEqual({ status: 'not_configured' });
    expect(checks.items.find((i) => i.id === 'spam')?.level).toBe('info');
    expect(checks.errors).toBe(checks.items.filter((i) => i.level === 'error').length);
    expect(checks.items.map((i) => i.id)).toEqual(
      expect.arrayContaining(['dark-mode', 'links', 'css']),
    );
    expect(checks.items[0]?.level).toBe('error');
    expect(checks.links[0]?.level).toBe('error');
  });

  it('reports a spamd that does not answer as a failed check, not a crash', async () => {
    const checks = await runChecks(
      { html: null, text: 'x', headers, raw: Buffer.from('x') },
      {
        baseUrl: 'https://app.example.com',
        routes: appRoutes(),
        spamd: { host: '127.0.0.1', port: 1 },
      },
    );
    expect(checks.spam.status).toBe('failed');
    expect(checks.items.find((i) => i.id === 'spam')?.level).toBe('warning');
  });
});
