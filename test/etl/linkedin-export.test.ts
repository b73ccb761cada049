import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import { rawDocumentId } from '../../src/domain/links';
import { CrawlError } from '../../src/etl/errors';
import { parseLinkedInExport } from '../../src/etl/linkedin-export';

const SHARES = [
  'Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility',
  '2024-01-15 09:30:12,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7152000000000000001,"Shipped our first Temporal workflow today.',
  '',
  'Three lessons:',
  '- keep activities idempotent',
  '- classify errors',
  '- ""retry"" is not a strategy",,,MEMBER_NETWORK',
  '2024-02-01 18:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7152000000000000002,,https://example.com/article,,MEMBER_NETWORK',
  '2024-02-03 08:00:00,not-a-link,"A post whose link is broken",,,MEMBER_NETWORK',
  '2024-03-10 12:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7152000000000000003?utm_source=share,"Café au lait ☕ and a short note.",,https://media.licdn.com/x.jpg,CONNECTIONS',
].join('\r\n');

const ARTICLE = `<html><head><title>Why I write</title></head><body><h1>Why I write</h1><p class="created">Created on 2023-11-02 10:00</p>
<div><p>Writing is how I find out what I think. Every long post I have published started as a question I could not answer in a sentence.</p>
<p>This article collects the habits that keep me writing every week, and what I gave up to keep them.</p>
<h2>Habits</h2><ul><li>Write before reading email.</li><li>Publish on Fridays.</li></ul></div></body></html>`;

function exportZip(extra: Record<string, Uint8Array> = {}): Uint8Array {
  return zipSync({
    'Shares.csv': strToU8(SHARES),
    'Profile.csv': strToU8('First Name,Last Name\nJane,Doe\n'),
    'Articles/Articles/2023-11-02 10:00:00.0-Why I write.html': strToU8(ARTICLE),
    ...extra,
  });
}

describe('LinkedIn data export parser', () => {
  it('imports posts from Shares.csv with multi-line, quoted commentary, and accounts for every skipped row', async () => {
    const result = await parseLinkedInExport(exportZip());
    assert.equal(result.posts.length, 2);
    const [first, second] = result.posts;
    assert.equal(first!.category, 'posts');
    assert.equal(first!.platform, 'linkedin');
    assert.equal(
      first!.content.Content,
      'Shipped our first Temporal workflow today.\n\nThree lessons:\n- keep activities idempotent\n- classify errors\n- "retry" is not a strategy',
    );
    assert.equal(first!.metadata.publishedAt, '2024-01-15T09:30:12.000Z');
    assert.equal(first!.documentId, rawDocumentId(first!.link));
    assert.equal(second!.content.Content, 'Café au lait ☕ and a short note.');
    assert.equal(second!.link, 'https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7152000000000000003');
    assert.equal(second!.metadata.mediaUrl, 'https://media.licdn.com/x.jpg');
    assert.deepEqual(
      result.skipped.map((s) => s.reason),
      ['a re-share without commentary', 'no valid ShareLink (not-a-link)'],
    );
    assert.equal(result.posts.length + result.skipped.length, 4, 'every row is accounted for');
  });

  it('imports long-form articles as Markdown', async () => {
    const { articles } = await parseLinkedInExport(exportZip());
    assert.equal(articles.length, 1);
    assert.equal(articles[0]!.content.Title, 'Why I write');
    assert.match(articles[0]!.content.Content!, /Writing is how I find out what I think\./);
    assert.match(articles[0]!.content.Content!, /^## Habits$/m);
    assert.match(articles[0]!.link, /^https:\/\/www\.linkedin\.com\/pulse\//);
  });

  it('rejects archives that are not a LinkedIn export', async () => {
    await assert.rejects(
      parseLinkedInExport(strToU8('not a zip')),
      (e: unknown) => e instanceof CrawlError && e.kind === 'parse',
    );
    await assert.rejects(
      parseLinkedInExport(zipSync({ 'notes.txt': strToU8('hi') })),
      (e: unknown) => e instanceof CrawlError && e.kind === 'parse',
    );
  });

  it('does not inflate oversized entries', async () => {
    const result = await parseLinkedInExport(exportZip(), { maxEntryBytes: 100 });
    assert.equal(result.posts.length, 0);
    assert.ok(result.skipped.some((s) => /exceeds the 100-byte cap/.test(s.reason)));
  });
});
