// The shape cache (src/mail/render.ts): for every shipped template and any data, the HTML is
// exactly preact's render and the text exactly what html-to-text makes of it, cached or not.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderEmail, renderEmailUncached, toText } from '../../src/mail/render.ts';
import { type Branding, type TemplateName, templates } from '../../src/mail/templates/index.ts';

const branding: Branding = {
  appName: 'Mailproof',
  baseUrl: 'http://127.0.0.1:3000',
  brandColor: '#0b57d0',
} as Branding;

const safeWord = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._~:/?#@!$*+,;=%-]{1,120}$/),
  fc.stringMatching(/^https?:\/\/[A-Za-z0-9._~:/?#@!$*+,;=%-]{1,120}$/),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/),
);
const anyString = fc.oneof(
  safeWord,
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', 'a b', '<b>&', 'ÄÖÜ'),
);

describe('rendered parts', () => {
  for (const [name, template] of Object.entries(templates)) {
    it(`${name}: both parts are those of an uncached render, whatever the data`, () => {
      // biome-ignore lint/suspicious/noExplicitAny: each template has its own data type
      const sample = (template as any).sample(branding) as Record<string, unknown>;
      const stringFields = Object.keys(sample).filter((k) => typeof sample[k] === 'string');
      fc.assert(
        fc.property(
          fc.array(fc.oneof(safeWord, safeWord, anyString), {
            minLength: stringFields.length,
            maxLength: stringFields.length,
          }),
          fc.boolean(),
          (values, sameShapeTwice) => {
            const data = { ...sample };
            stringFields.forEach((field, i) => {
              data[field] = values[i];
            });
            const first = renderEmail(name, data, branding);
            expect(first).toEqual(renderEmailUncached(name as TemplateName, data, branding));
            expect(first.text).toBe(toText(first.html));
            if (sameShapeTwice) {
              // The same shape again (same lengths and kinds), now from the cache.
              const again = { ...data };
              for (const field of stringFields) {
                const value = String(data[field]);
                again[field] = [...value].reverse().join('');
              }
              const second = renderEmail(name, again, branding);
              expect(second).toEqual(renderEmailUncached(name as TemplateName, again, branding));
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it('puts split values back (the code box shows the code in two groups)', () => {
    const data = {
      url: 'http://127.0.0.1:3000/verify/AbC-123_xyz',
      code: '12345678',
      linkMinutes: 60,
      codeMinutes: 10,
    };
    renderEmail('verify-email', data, branding);
    const cached = renderEmail(
      'verify-email',
      { ...data, url: 'http://127.0.0.1:3000/verify/ZyX-987_abc', code: '87654321' },
      branding,
    );
    expect(cached.text).toContain('8765 4321');
    expect(cached.text).toContain('http://127.0.0.1:3000/verify/ZyX-987_abc');
    expect(cached.text).not.toMatch(/[\ue000-\uf8ff]/);
    expect(cached.text).toBe(toText(cached.html));
    expect(cached.html).toContain('8765');
    expect(cached.html).toContain('href="http://127.0.0.1:3000/verify/ZyX-987_abc"');
    expect(cached.html).not.toMatch(/[\ue000-\uf8ff]/);
    expect(cached).toEqual(
      renderEmailUncached(
        'verify-email',
        { ...data, url: 'http://127.0.0.1:3000/verify/ZyX-987_abc', code: '87654321' },
        branding,
      ),
    );
  });
});
