import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidLinkError, normalizeLink, RAW_DOCUMENT_NAMESPACE, rawDocumentId } from '../../src/domain/links';

describe('normalizeLink', () => {
  const cases: [string, string][] = [
    ['HTTPS://Example.COM:443/Blog/Post/?utm_source=x&b=2&a=1#section', 'https://example.com/Blog/Post?a=1&b=2'],
    ['http://example.com:80/', 'http://example.com/'],
    ['example.com/post', 'https://example.com/post'],
    ['https://medium.com/@jane/story-3f2a?source=rss----1', 'https://medium.com/@jane/story-3f2a'],
    ['https://jane.substack.com/p/post?r=abc&s=w', 'https://jane.substack.com/p/post'],
    ['https://www.GitHub.com/Temporalio/SDK-TypeScript.git', 'https://github.com/temporalio/sdk-typescript'],
    ['https://example.com/a//b/', 'https://example.com/a/b'],
    ['https://bücher.example/über', 'https://xn--bcher-kva.example/%C3%BCber'],
    ['  https://example.com/x?fbclid=1&gclid=2  ', 'https://example.com/x'],
  ];
  for (const [input, expected] of cases)
    it(`${input} → ${expected}`, () => assert.equal(normalizeLink(input), expected));

  it('refuses non-http schemes, credentials and garbage', () => {
    for (const [input, reason] of [
      ['ftp://example.com/x', 'scheme'],
      ['javascript:alert(1)', 'scheme'],
      ['https://user:pass@example.com/', 'credentials'],
      ['', 'empty'],
      ['http://', 'unparseable'],
    ] as const) {
      assert.throws(
        () => normalizeLink(input),
        (e: unknown) => e instanceof InvalidLinkError && e.reason === reason,
        input,
      );
    }
  });
});

describe('rawDocumentId', () => {
  it('is a UUIDv5 in the documented namespace, equal for equivalent links', () => {
    const id = rawDocumentId('https://example.com/post/');
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(id, rawDocumentId('HTTPS://EXAMPLE.com/post?utm_medium=email#top'));
    assert.notEqual(id, rawDocumentId('https://example.com/other'));
    assert.equal(RAW_DOCUMENT_NAMESPACE, '474da017-1736-5b59-ab1c-a4eaf790396f');
    // pinned: changing the namespace or the normalisation silently duplicates every stored document
    assert.equal(rawDocumentId('https://example.com/post'), id);
  });
});
