// The inbox's served copy of an email: links go to a new tab, nothing else changes.
import { describe, expect, it } from 'vitest';
import { previewHtml } from '../../src/inbox/routes.tsx';

const BASE = '<base target="_blank">';

describe('previewHtml', () => {
  it('puts the base first in the head, keeping its attributes', () => {
    expect(previewHtml('<!DOCTYPE html><html><head lang="x"><title>t</title></head></html>')).toBe(
      `<!DOCTYPE html><html><head lang="x">${BASE}<title>t</title></head></html>`,
    );
    expect(previewHtml('<HTML><HEAD></HEAD><body>x</body></HTML>')).toBe(
      `<HTML><HEAD>${BASE}</HEAD><body>x</body></HTML>`,
    );
  });

  it('does not mistake <header> for the head', () => {
    expect(previewHtml('<body><header>h</header></body>')).toBe(
      `${BASE}<body><header>h</header></body>`,
    );
  });

  it('keeps a doctype first when there is no head, so the rendering mode stays', () => {
    expect(previewHtml('<!doctype html>\n<p>hi</p>')).toBe(`<!doctype html>${BASE}\n<p>hi</p>`);
    expect(previewHtml('<p>hi</p>')).toBe(`${BASE}<p>hi</p>`);
  });
});
