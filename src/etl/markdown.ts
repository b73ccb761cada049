import TurndownService from 'turndown';
import type { DomElement, DomNode } from './dom';

/**
 * HTML → Markdown-like text for crawled articles.
 *
 * Keeps what matters to a writing-style model and to chunking: paragraphs, headings (ATX `#`), lists, block
 * quotes, fenced code blocks (with the language when the page names it) and simple tables (one row a line).
 * Drops what is noise in training text: images, link targets (the link text stays), buttons and forms.
 * Markdown escaping is switched off on purpose: `snake\_case` and `1\.` are wrong text for a language model.
 */

function codeLanguage(node: DomElement): string {
  const candidates: DomElement[] = [node];
  const code = node.querySelector('code');
  if (code) candidates.push(code);
  const tagged = node.querySelector('[data-code-block-lang], [data-lang], [data-language]');
  if (tagged) candidates.push(tagged);
  for (const el of candidates) {
    const attr =
      el.getAttribute('data-lang') ?? el.getAttribute('data-language') ?? el.getAttribute('data-code-block-lang');
    if (attr && /^[\w+#.-]{1,30}$/.test(attr)) return attr.toLowerCase();
    const cls = el.getAttribute('class') ?? '';
    const m = /(?:^|\s)(?:language|lang|highlight-source|brush:?)-?([\w+#.-]{1,30})/i.exec(cls);
    if (m?.[1] && !/^(none|plaintext|text)$/i.test(m[1])) return m[1].toLowerCase();
  }
  return '';
}

/** Text of a <pre>, with <br> as newlines (some highlighters emit <br> instead of "\n"). */
function preText(node: DomElement): string {
  let out = '';
  const walk = (n: DomNode): void => {
    if (n.nodeType === 3) out += n.nodeValue ?? '';
    else if (n.nodeType === 1) {
      const tag = (n as DomElement).tagName.toLowerCase();
      if (tag === 'br') out += '\n';
      else {
        for (const c of Array.from(n.childNodes)) walk(c);
        if ((tag === 'div' || tag === 'p') && !out.endsWith('\n')) out += '\n';
      }
    }
  };
  walk(node);
  return out.replace(/\n+$/, '');
}

let service: TurndownService | undefined;

function createService(): TurndownService {
  const td = new TurndownService({
    headingStyle: 'atx',
    codeBlockStyle: 'fenced',
    bulletListMarker: '-',
    emDelimiter: '*',
    strongDelimiter: '**',
    hr: '---',
  });
  td.escape = (s: string): string => s;
  td.remove([
    'script',
    'style',
    'noscript',
    'template',
    'iframe',
    'svg',
    'canvas',
    'button',
    'select',
    'input',
    'textarea',
    'form',
    'object',
    'embed',
    'video',
    'audio',
  ] as TurndownService.Filter);
  td.addRule('image', { filter: ['img', 'picture', 'source'], replacement: () => '' });
  td.addRule('link', {
    filter: (node) => (node as unknown as DomNode).nodeName === 'A',
    replacement: (content) => content,
  });
  td.addRule('pre', {
    filter: (node) => (node as unknown as DomNode).nodeName === 'PRE',
    replacement: (_content, node) => {
      const el = node as unknown as DomElement;
      const text = preText(el);
      if (!text.trim()) return '';
      const fence = text.includes('```') ? '~~~' : '```';
      return `\n\n${fence}${codeLanguage(el)}\n${text}\n${fence}\n\n`;
    },
  });
  td.addRule('tableCell', {
    filter: ['th', 'td'],
    replacement: (content, node) => {
      const text = content.replace(/\s*\n+\s*/g, ' ').trim();
      return (node as unknown as DomElement).previousElementSibling ? ` | ${text}` : text;
    },
  });
  td.addRule('tableRow', { filter: 'tr', replacement: (content) => `\n${content}` });
  td.addRule('tableSection', {
    filter: ['table', 'thead', 'tbody', 'tfoot'],
    replacement: (content, node) =>
      (node as unknown as DomNode).nodeName === 'TABLE' ? `\n\n${content.trim()}\n\n` : content,
  });
  td.addRule('caption', {
    filter: ['caption', 'figcaption'],
    replacement: (content) => (content.trim() ? `\n\n${content.trim()}\n\n` : ''),
  });
  return td;
}

/** Converts an element (any DOM with nodeType/childNodes, e.g. linkedom) or an HTML string to Markdown. */
export function htmlToMarkdown(input: string | DomNode): string {
  service ??= createService();
  const md = service.turndown(input);
  return tidyMarkdown(md);
}

/** Normalises whitespace without touching fenced code blocks. */
export function tidyMarkdown(md: string): string {
  const parts = md.split(/(^(?:```|~~~)[^\n]*\n[\s\S]*?\n(?:```|~~~)$)/m);
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return part;
      return part
        .replace(/\u00a0/g, ' ')
        .replace(/[ \t]+\n/g, '\n')
        .replace(/\n[ \t]+(?=\S)(?![-*+] |\d+\. )/g, '\n')
        .replace(/\n{3,}/g, '\n\n');
    })
    .join('')
    .trim();
}
