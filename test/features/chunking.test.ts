import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { validate as isUuid, version as uuidVersion } from 'uuid';
import type {
  CleanedArticleDocument,
  CleanedPostDocument,
  RawRepositoryDocument,
  RepositoryChunk,
} from '../../src/domain/documents';
import {
  CHUNK_ID_NAMESPACE,
  DEFAULT_CHUNKING_SETTINGS,
  MAX_CONTENT_TOKENS,
  chunkDocument,
  chunkId,
  resolveChunkingSettings,
  splitText,
} from '../../src/features/chunking';
import { cleanArticle, cleanRepository } from '../../src/features/cleaning';
import type { TokenCounter } from '../../src/features/tokenizer';
import { loadCorpusArticles, realTokenCounter } from './helpers';

let counter: TokenCounter;
before(async () => {
  counter = await realTokenCounter();
});

/**
 * Every non-whitespace character of `text` is inside some [start, end) span — or, for a stretch that repeats
 * text found earlier (chunkDocument leaves out a chunk identical to an earlier one), that text is in some chunk.
 */
function assertCovers(text: string, spans: Array<{ start: number; end: number }>, label: string): void {
  const covered = new Uint8Array(text.length);
  for (const s of spans) covered.fill(1, s.start, s.end);
  for (let i = 0; i < text.length; i++) {
    if (covered[i] || !/\S/.test(text[i]!)) continue;
    let j = i;
    while (j < text.length && !covered[j]) j++;
    const gap = text.slice(i, j).trim();
    const dup = spans.some((s) => text.slice(s.start, s.end).includes(gap));
    assert.ok(dup, `${label}: characters ${i}..${j} in no chunk: …${text.slice(Math.max(0, i - 40), i + 40)}…`);
    i = j;
  }
}

/** Character ranges of fenced code bodies (between the fence lines). */
function codeRanges(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const re = /^(`{3,})[^\n]*\n([\s\S]*?)\n\1$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const bodyStart = m.index + m[0].indexOf('\n') + 1;
    out.push([bodyStart, bodyStart + m[2]!.length]);
  }
  return out;
}

function article(content: string, id = 'doc-1'): CleanedArticleDocument {
  return {
    id,
    category: 'articles',
    platform: 'test',
    author_id: 'a1',
    author_full_name: 'Jane Doe',
    title: 'T',
    link: 'https://example.com/t',
    content,
  };
}

describe('chunk ids', () => {
  it('are UUIDv5 of document id + sha256(content) under the fixed namespace', () => {
    const id = chunkId('doc-1', 'hello world');
    assert.ok(isUuid(id));
    assert.equal(uuidVersion(id), 5);
    assert.equal(id, chunkId('doc-1', 'hello world'));
    assert.notEqual(id, chunkId('doc-2', 'hello world'));
    assert.notEqual(id, chunkId('doc-1', 'hello world!'));
    assert.equal(CHUNK_ID_NAMESPACE, '183782d9-44ba-44b5-b92d-90b66f552793');
  });
});

describe('settings', () => {
  it('defaults fit the window and reject impossible values', () => {
    for (const s of Object.values(DEFAULT_CHUNKING_SETTINGS)) assert.ok(s.maxTokens <= MAX_CONTENT_TOKENS);
    assert.equal(MAX_CONTENT_TOKENS, 254);
    assert.ok(DEFAULT_CHUNKING_SETTINGS.posts.maxTokens < DEFAULT_CHUNKING_SETTINGS.articles.maxTokens);
    assert.throws(() => resolveChunkingSettings('articles', { maxTokens: 300 }), RangeError);
    assert.throws(() => resolveChunkingSettings('articles', { minTokens: 250, targetTokens: 200 }), RangeError);
    assert.throws(() => resolveChunkingSettings('articles', { overlapTokens: 254 }), RangeError);
    assert.equal(resolveChunkingSettings('posts', { maxTokens: 64, targetTokens: 48 }).maxTokens, 64);
  });
});

describe('splitting small texts', () => {
  it('keeps a short text whole and never makes empty chunks', () => {
    const chunks = chunkDocument(article('# Title\n\nOne short paragraph.'), counter);
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.content, '# Title\n\nOne short paragraph.');
    assert.equal(chunks[0]!.token_count, counter.count('# Title\n\nOne short paragraph.'));
    assert.deepEqual(chunkDocument(article('   \n\n  '), counter), []);
  });

  it('cuts at headings and paragraphs before sentences, and merges a tiny tail instead of leaving it alone', () => {
    const para = (n: number, word: string): string =>
      Array.from({ length: n }, (_, i) => `Sentence ${i} talks about ${word} in some detail here.`).join(' ');
    const text = `# A\n\n${para(14, 'alpha')}\n\n## B\n\n${para(14, 'beta')}\n\n${para(2, 'tail')}`;
    const settings = { maxTokens: 160, targetTokens: 120, minTokens: 40, overlapTokens: 0 };
    const spans = splitText(text, counter, settings);
    const pieces = spans.map((s) => text.slice(s.start, s.end));
    assert.ok(pieces[0]!.startsWith('# A') && pieces[0]!.endsWith('alpha in some detail here.'), pieces[0]);
    assert.ok(
      pieces.some((p) => p.startsWith('## B')),
      'section B does not start a chunk',
    );
    for (const s of spans)
      assert.ok(s.tokens >= settings.minTokens && s.tokens <= settings.maxTokens, String(s.tokens));
    assertCovers(text, spans, 'synthetic');
  });

  it('splits a sentence longer than the window at words, and a giant word at characters', () => {
    const longSentence = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const giant = 'x'.repeat(3000);
    const text = `${longSentence}\n\n${giant}`;
    const settings = resolveChunkingSettings('articles');
    const spans = splitText(text, counter, settings);
    for (const s of spans) assert.ok(counter.count(text.slice(s.start, s.end)) <= settings.maxTokens);
    assertCovers(text, spans, 'long');
    assert.ok(spans.length >= 4);
  });

  it('applies overlap of whole sentences when a chunk starts inside a paragraph', () => {
    const sentences = Array.from({ length: 60 }, (_, i) => `Fact number ${i} is stated here.`);
    const text = `# Facts\n\n${sentences.join(' ')}`;
    const spans = splitText(text, counter, { maxTokens: 100, targetTokens: 80, minTokens: 20, overlapTokens: 20 });
    assert.ok(spans.length >= 3);
    for (let k = 1; k < spans.length; k++) {
      assert.ok(spans[k]!.start < spans[k - 1]!.end, 'no overlap');
      assert.match(text.slice(spans[k]!.start, spans[k]!.end), /^Fact number \d+ is stated here\./);
    }
  });

  it('uses smaller chunks for posts', () => {
    const post: CleanedPostDocument = {
      id: 'p1',
      category: 'posts',
      platform: 'linkedin',
      author_id: 'a1',
      author_full_name: 'Jane Doe',
      image: null,
      link: null,
      content: Array.from({ length: 40 }, (_, i) => `Point ${i}: chunk by tokens, not characters.`).join('\n'),
    };
    const chunks = chunkDocument(post, counter);
    assert.ok(chunks.length >= 3);
    for (const c of chunks) assert.ok(c.token_count <= DEFAULT_CHUNKING_SETTINGS.posts.maxTokens);
    assert.equal(chunks[0]!.metadata.strategy, 'posts/paragraph-packed');
  });
});

describe('repositories', () => {
  const fn = (name: string, lines: number): string =>
    `def ${name}(x):\n    """Docstring of ${name}."""\n` +
    Array.from({ length: lines }, (_, i) => `    x = x + ${i}  # step ${i} of ${name}`).join('\n') +
    '\n    return x\n';
  const repo: RawRepositoryDocument = {
    id: 'r1',
    category: 'repositories',
    platform: 'github',
    author_id: 'a1',
    author_full_name: 'Jane Doe',
    name: 'demo',
    link: 'https://github.com/jane/demo',
    content: {
      'pkg/a.py': ['import os', '', '', fn('alpha', 20), '', fn('beta', 20), '', fn('gamma', 20)].join('\n'),
      'pkg/b.py': 'X = 1\n',
      'README.md': '# Demo\n\nThis repository demonstrates code-aware chunking.\n',
    },
  };
  const cleaned = cleanRepository(repo);

  it('never mixes files in a chunk, starts chunks at function boundaries, never cuts a line', () => {
    const chunks = chunkDocument(cleaned, counter) as RepositoryChunk[];
    assert.ok(chunks.length >= 4, String(chunks.length));
    assert.ok(chunks.every((c) => c.category === 'repositories' && c.name === 'demo'));
    for (const c of chunks) {
      const file = cleaned.files.find((f) => f.start <= c.start && c.start < f.end)!;
      assert.ok(c.end <= file.end, `chunk ${c.index} crosses out of ${file.path}`);
      assert.equal(c.path, file.path);
      assert.ok(c.start === 0 || cleaned.content[c.start - 1] === '\n', 'chunk starts mid-line');
      assert.ok(c.end === cleaned.content.length || cleaned.content[c.end] === '\n', 'chunk ends mid-line');
      assert.ok(c.token_count <= DEFAULT_CHUNKING_SETTINGS.repositories.maxTokens);
    }
    const aChunks = chunks.filter((c) => c.path === 'pkg/a.py');
    assert.ok(
      aChunks.filter((c) => /^(# File: pkg\/a\.py|def \w+\(x\):)/.test(c.content)).length >= aChunks.length - 1,
    );
    assert.ok(chunks.some((c) => c.content === '# File: pkg/b.py\n\nX = 1'));
    assertCovers(cleaned.content, chunks, 'repo');
  });
});

describe('the 76 real articles', () => {
  const docs = loadCorpusArticles().map(cleanArticle);
  const settings = DEFAULT_CHUNKING_SETTINGS.articles;
  let all: ReturnType<typeof chunkDocument>[] = [];
  before(() => {
    all = docs.map((d) => chunkDocument(d, counter));
  });

  it('gives every document chunks, none empty, none over the window (re-counted with the tokenizer)', () => {
    let total = 0;
    all.forEach((chunks, i) => {
      assert.ok(chunks.length > 0, `${docs[i]!.link} has no chunks`);
      for (const c of chunks) {
        total++;
        assert.ok(c.content.trim().length > 0);
        const real = counter.count(c.content);
        assert.equal(c.token_count, real);
        assert.ok(real <= settings.maxTokens, `${real} tokens in chunk ${c.index} of ${docs[i]!.link}`);
        assert.ok(real + 2 <= 256);
      }
    });
    assert.ok(total > 500, `only ${total} chunks`);
  });

  it('puts every word of the cleaned text in some chunk, as verbatim slices in order', () => {
    all.forEach((chunks, i) => {
      const doc = docs[i]!;
      chunks.forEach((c, k) => {
        assert.equal(c.content, doc.content.slice(c.start, c.end));
        assert.equal(c.index, k);
        if (k > 0) assert.ok(c.start > chunks[k - 1]!.start && c.end > chunks[k - 1]!.end);
      });
      assertCovers(doc.content, chunks, doc.link);
      const words = new Set(chunks.flatMap((c) => c.content.split(/\s+/)));
      for (const w of doc.content.split(/\s+/)) if (w) assert.ok(words.has(w), `"${w}" of ${doc.link} in no chunk`);
    });
  });

  it('does not cut code blocks mid-line', () => {
    let boundariesInCode = 0;
    all.forEach((chunks, i) => {
      const text = docs[i]!.content;
      const ranges = codeRanges(text);
      for (const c of chunks) {
        for (const [pos, side] of [
          [c.start, 'start'],
          [c.end, 'end'],
        ] as const) {
          if (!ranges.some(([a, b]) => pos > a && pos < b)) continue;
          boundariesInCode++;
          const ok = side === 'start' ? text[pos - 1] === '\n' : text[pos] === '\n';
          const line = text.slice(text.lastIndexOf('\n', pos - 1) + 1, text.indexOf('\n', pos));
          assert.ok(
            ok || counter.count(line) > settings.maxTokens,
            `${side} of chunk ${c.index} mid-line in ${docs[i]!.link}: ${line}`,
          );
        }
      }
    });
    assert.ok(boundariesInCode > 0, 'no chunk boundary fell inside code: the property was not exercised');
  });

  it('merges tiny trailing pieces: no chunk under minTokens unless its document is that small', () => {
    all.forEach((chunks, i) => {
      const total = counter.count(docs[i]!.content);
      for (const c of chunks) {
        if (total >= settings.minTokens)
          assert.ok(c.token_count >= settings.minTokens, `${c.token_count}-token chunk in ${docs[i]!.link}`);
      }
    });
  });

  it('is deterministic: same chunks and ids on a second run, ids unique within a document', () => {
    const again = docs.slice(0, 8).map((d) => chunkDocument(d, counter));
    assert.deepEqual(again, all.slice(0, 8));
    for (const chunks of all) assert.equal(new Set(chunks.map((c) => c.id)).size, chunks.length);
    const c = all[0]![0]!;
    assert.equal(c.id, chunkId(c.document_id, c.content));
    assert.equal(c.metadata.tokenizer, counter.name);
    assert.equal(c.category, 'articles');
  });
});
