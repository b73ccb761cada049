import { cleanText, parseDocument } from '../dom';
import { extractArticle } from '../extraction';
import type { FetchedPage } from '../fetcher';
import { htmlToMarkdown } from '../markdown';
import type { ArticleContent, HtmlCrawler } from '../types';
import { extractMetadata, firstText, pageMetadata, removeAll, wordCount } from './common';

/**
 * Substack posts (*.substack.com and custom domains, recognised from the page: substackcdn.com assets, a
 * Substack generator tag, or the post markup itself).
 *
 * Markup: h1.post-title, h3.subtitle, the byline in .post-meta / .byline-wrapper, the free part of the body in
 * .available-content .body.markup; paid posts end in a .paywall block (and JSON-LD isAccessibleForFree: false).
 */

const SUBSTACK_HOST = /(^|\.)substack\.com$/;

const CHROME = [
  '.subscription-widget-wrap',
  '.subscription-widget-wrap-editor',
  '.subscribe-widget',
  '.button-wrapper',
  '.share-dialog',
  '.post-ufi',
  '.image-link-expand',
  '[data-component-name="SubscribeWidget"]',
  '[data-component-name="ButtonCreateButton"]',
  'button',
  'svg',
  'img',
  'picture',
  'script',
  'style',
];

function isSubstackPage(html: string): boolean {
  const head = html.slice(0, 300_000);
  return (
    /<meta[^>]+name=["']generator["'][^>]+content=["']Substack/i.test(head) ||
    /substackcdn\.com/.test(head) ||
    (/class=["'][^"']*available-content/.test(head) && /class=["'][^"']*body markup/.test(head))
  );
}

export const substackCrawler: HtmlCrawler = {
  id: { name: 'substack', version: '1.0.0' },
  platform: 'substack',
  matchesUrl: (url) => SUBSTACK_HOST.test(url.hostname) && url.hostname !== 'substack.com',
  matchesPage: isSubstackPage,
  extract(page: FetchedPage): ArticleContent {
    const doc = parseDocument(page.body);
    const meta = extractMetadata(doc);
    const warnings: string[] = [];

    const title = firstText(doc, ['h1.post-title', '.post-header h1', 'article h1']) ?? meta.title ?? '';
    const subtitle = firstText(doc, ['h3.subtitle', '.post-header .subtitle', 'h2.subtitle']) ?? meta.subtitle ?? '';
    const author =
      firstText(doc, [
        '.post-header .byline-names a',
        '.byline-wrapper a[href*="/@"]',
        '.post-meta a[href*="substack.com/@"]',
        '.profile-hover-card-target a',
      ]) ?? meta.author;

    const bodyEl =
      doc.querySelector('.available-content .body.markup') ??
      doc.querySelector('.body.markup') ??
      doc.querySelector('.available-content');
    let content = '';
    let extraction = 'substack';
    if (bodyEl) {
      const body = bodyEl.cloneNode(true) as typeof bodyEl;
      removeAll(body, CHROME);
      content = htmlToMarkdown(body);
    }
    if (wordCount(content) < 20) {
      const generic = extractArticle(page.body, page.finalUrl);
      if (wordCount(generic.content) > wordCount(content)) {
        content = generic.content;
        extraction = generic.method;
        warnings.push('Substack markup not recognised: body from the generic extractor');
      }
    }

    const paywall = doc.querySelector('.paywall, [data-testid="paywall"], .paywall-jump');
    const paid =
      meta.paywalled === true ||
      !!paywall ||
      /this post is for paid subscribers/i.test(cleanText(doc.body?.textContent));
    const completeness: ArticleContent['completeness'] = paid ? 'paywalled' : 'complete';
    if (paid) warnings.push(`paywalled: only the free part (${wordCount(content)} words) is readable`);

    const metadata = pageMetadata(meta);
    if (author) metadata.author = author;
    metadata.wordCount = wordCount(content);
    metadata.extraction = extraction;
    return { title, subtitle, content, completeness, metadata, warnings };
  },
};
