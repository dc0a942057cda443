// The parsed HTML part, shared by the checks: one parse per message.
import type { ChildNode, Document, Element } from 'domhandler';
import { parseDocument } from 'htmlparser2';
import parseStyle from 'style-to-object';

export type { Document, Element };

export function parseHtml(html: string): Document {
  return parseDocument(html, { lowerCaseTags: true, lowerCaseAttributeNames: true });
}

export function isElement(node: ChildNode): node is Element {
  return node.type === 'tag' || node.type === 'script' || node.type === 'style';
}

/** Every element in document order. */
export function* elements(root: Document | Element): Generator<Element> {
  for (const child of root.children) {
    if (!isElement(child)) continue;
    yield child;
    yield* elements(child);
  }
}

/** An inline `style` attribute as lower-case property → value; a broken one counts as empty. */
export function inlineStyle(element: Element): Record<string, string> {
  const style = element.attribs.style;
  if (!style) return {};
  try {
    const parsed = parseStyle(style) ?? {};
    const result: Record<string, string> = {};
    for (const [name, value] of Object.entries(parsed)) result[name.toLowerCase()] = value.trim();
    return result;
  } catch {
    return {};
  }
}
