import { parseHTML } from 'linkedom';

/**
 * The small structural DOM surface the extractors use. The project compiles without lib.dom (Node only), and
 * linkedom — a fast server-side DOM — implements all of this, so HTML code is typed against these interfaces.
 */
export interface DomNode {
  readonly nodeType: number;
  readonly nodeName: string;
  nodeValue: string | null;
  textContent: string | null;
  readonly childNodes: ArrayLike<DomNode>;
  readonly parentNode: DomNode | null;
  readonly parentElement: DomElement | null;
  readonly isConnected: boolean;
  remove(): void;
  contains(other: DomNode | null): boolean;
  cloneNode(deep?: boolean): DomNode;
}

export interface DomElement extends DomNode {
  readonly tagName: string;
  readonly children: ArrayLike<DomElement>;
  readonly previousElementSibling: DomElement | null;
  readonly nextElementSibling: DomElement | null;
  innerHTML: string;
  readonly outerHTML: string;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  querySelector(selectors: string): DomElement | null;
  querySelectorAll(selectors: string): ArrayLike<DomElement>;
  closest(selectors: string): DomElement | null;
  appendChild(node: DomNode): DomNode;
  replaceWith(...nodes: (DomNode | string)[]): void;
}

export interface DomDocument {
  readonly documentElement: DomElement | null;
  readonly head: DomElement | null;
  readonly body: DomElement | null;
  title: string;
  querySelector(selectors: string): DomElement | null;
  querySelectorAll(selectors: string): ArrayLike<DomElement>;
  createElement(tagName: string): DomElement;
  createTextNode(text: string): DomNode;
}

/** Parses an HTML page (or fragment) into a linkedom document. Never throws on malformed markup. */
export function parseDocument(html: string): DomDocument {
  // linkedom builds an odd tree for input without <html>: wrap fragments in a page.
  const source = /<html[\s>]/i.test(html) ? html : `<!doctype html><html><head></head><body>${html}</body></html>`;
  return (parseHTML(source) as unknown as { document: DomDocument }).document;
}

const WS = /\s+/g;
/** Collapses whitespace. */
export function cleanText(s: string | null | undefined): string {
  return (s ?? '').replace(WS, ' ').trim();
}
