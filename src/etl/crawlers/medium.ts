import { cleanText, parseDocument, type DomDocument, type DomElement } from '../dom';
import type { FetchedPage } from '../fetcher';
import { extractArticle } from '../extraction';
import { htmlToMarkdown } from '../markdown';
import type { ArticleContent, HtmlCrawler } from '../types';
import { extractMetadata, firstText, pageMetadata, readingMinutes, removeAll, wordCount } from './common';

/**
 * Medium (medium.com, *.medium.com and Medium custom domains), from the server-rendered HTML — no browser.
 *
 * Today's Medium markup: the story is an <article>; the title is h1[data-testid="storyTitle"].pw-post-title,
 * the subtitle h2.pw-subtitle-paragraph, the byline (author, read time, date, clap/share buttons) sits in
 * div.speechify-ignore blocks, body paragraphs are p.pw-post-body-paragraph[data-selectable-paragraph], code
 * blocks are <pre> with span[data-code-block-lang]. Member-only stories served to a visitor stop after a few
 * paragraphs and show a sign-up prompt; JSON-LD says isAccessibleForFree: false. Such stories are reported as
 * 'paywalled' (member-only and prompt present) or 'truncated' (text far shorter than the stated read time).
 */

const MEDIUM_HOST = /(^|\.)medium\.com$/;

const CHROME = [
  '[data-testid="storyTitle"]',
  '.pw-post-title',
  '.pw-subtitle-paragraph',
  '.speechify-ignore',
  '[data-testid^="header"]',
  '[data-testid="audioPlayButton"]',
  '[data-testid="authorName"]',
  '[data-testid="authorPhoto"]',
  '[data-testid="publicationName"]',
  '[data-testid="storyPublishDate"]',
  '[data-testid="storyReadTime"]',
  '[aria-label="responses"]',
  '[aria-label="kicker paragraph"]',
  '[aria-labelledby="postFooterSocialMenu"]',
  '[role="tooltip"]',
  'button',
  'svg',
  'img',
  'picture',
  'noscript',
  'script',
  'style',
];

const PAYWALL_TEXT =
  /(create an account to read the full story|the author made this story available to medium members only|read the full story with a free account|become a medium member to (read|access)|this story is only available to (medium )?members|member-only story[\s\S]{0,80}sign up|upgrade to read)/i;

function isMediumPage(html: string): boolean {
  const head = html.slice(0, 200_000);
  return (
    /<meta[^>]+(property|name)=["']al:(android|ios):app_name["'][^>]+content=["']Medium["']/i.test(head) ||
    /<meta[^>]+content=["']com\.medium\.reader["']/i.test(head) ||
    (/miro\.medium\.com|cdn-client\.medium\.com/.test(head) &&
      /pw-post-body-paragraph|data-testid=["']storyTitle/.test(head))
  );
}

function storyRoot(doc: DomDocument): DomElement | null {
  const article = doc.querySelector('article');
  if (article) return article;
  const firstParagraph = doc.querySelector('.pw-post-body-paragraph');
  return firstParagraph?.closest('section') ?? null;
}

export const mediumCrawler: HtmlCrawler = {
  id: { name: 'medium', version: '1.0.0' },
  platform: 'medium',
  matchesUrl: (url) => MEDIUM_HOST.test(url.hostname),
  matchesPage: isMediumPage,
  extract(page: FetchedPage): ArticleContent {
    const doc = parseDocument(page.body);
    const meta = extractMetadata(doc);
    const warnings: string[] = [];

    const title =
      firstText(doc, ['h1[data-testid="storyTitle"]', 'h1.pw-post-title', 'article h1']) ??
      (meta.title ?? '').replace(/\s*\|\s*(by\s+[^|]+\|\s*)?Medium$/i, '').replace(/\s*\|\s*by\s+[^|]+$/i, '');
    const subtitle = firstText(doc, ['.pw-subtitle-paragraph', 'h2[data-testid="storySubtitle"]']) ?? '';
    const author = firstText(doc, ['[data-testid="authorName"]', '.pw-author a', '.pw-author']) ?? meta.author;
    const dateText = firstText(doc, ['[data-testid="storyPublishDate"]', '.pw-published-date']);
    const readTime =
      firstText(doc, ['[data-testid="storyReadTime"]', '.pw-reading-time']) ??
      doc.querySelector('meta[name="twitter:data1"]')?.getAttribute('content') ??
      undefined;
    const memberOnly =
      meta.paywalled === true ||
      /Member-only story/i.test(cleanText(doc.querySelector('article')?.textContent).slice(0, 2000));

    const root = storyRoot(doc);
    let content = '';
    if (root) {
      const body = root.cloneNode(true) as DomElement;
      // The paywall prompt is not the author's text.
      for (const el of Array.from(body.querySelectorAll('div, p, section'))) {
        if (body.contains(el) && PAYWALL_TEXT.test(cleanText(el.textContent)) && cleanText(el.textContent).length < 600)
          el.remove();
      }
      removeAll(body, CHROME);
      content = htmlToMarkdown(body);
    }
    if (wordCount(content) < 30 && !PAYWALL_TEXT.test(cleanText(doc.body?.textContent))) {
      // Markup we do not recognise (Medium changes it often): the generic extractor still finds the story.
      const generic = extractArticle(page.body, page.finalUrl);
      if (wordCount(generic.content) > wordCount(content)) {
        content = generic.content;
        warnings.push('Medium markup not recognised: body from the generic extractor');
      }
    }

    const words = wordCount(content);
    const minutes = readingMinutes(readTime);
    const prompt = PAYWALL_TEXT.test(cleanText(doc.body?.textContent));
    let completeness: ArticleContent['completeness'] = 'complete';
    if (memberOnly && prompt) completeness = 'paywalled';
    else if (prompt || (minutes !== undefined && minutes >= 4 && words < minutes * 265 * 0.25))
      completeness = 'truncated';
    if (completeness !== 'complete') {
      warnings.push(
        `${completeness}: ${words} words extracted${minutes ? ` for a ${minutes}-minute story` : ''}${memberOnly ? ' (member-only)' : ''}`,
      );
    }

    const metadata = pageMetadata(meta);
    if (author) metadata.author = author;
    if (!metadata.publishedAt && dateText) metadata.publishedAt = dateText;
    if (minutes !== undefined) metadata.readingMinutes = minutes;
    metadata.memberOnly = memberOnly;
    metadata.wordCount = words;
    metadata.extraction = 'medium';
    return { title, subtitle, content, completeness, metadata, warnings };
  },
};
