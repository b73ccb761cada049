import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RawPostDocument, RawRepositoryDocument } from '../../src/domain/documents';
import {
  cleanArticle,
  cleanDocument,
  cleanMarkdown,
  cleanPost,
  cleanRepository,
  cleanTitle,
  cleanUrlsInText,
  normalizeUnicode,
  stripTrackingParams,
} from '../../src/features/cleaning';
import { loadCorpusArticles } from './helpers';

describe('character normalisation', () => {
  it('removes zero-width and control characters, keeps tabs and newlines', () => {
    const out = normalizeUnicode('a\u200Bb\u200Dc\uFEFFd\u00ADe\u0007f\r\ng\th\u2028i');
    assert.equal(out, 'abcdef\ng\th\ni');
  });

  it('applies NFKC (math bold letters, ligatures, full-width) and ASCII quotes', () => {
    assert.equal(normalizeUnicode('𝗧𝗵𝗲 𝘁𝗲𝗰𝗵 𝘀𝘁𝗮𝗰𝗸'), 'The tech stack');
    assert.equal(normalizeUnicode('ﬁne-tuning ＬＬＭ'), 'fine-tuning LLM');
    assert.equal(normalizeUnicode('“quoted” ‘single’ it’s «fr»'), '"quoted" \'single\' it\'s "fr"');
  });
});

describe('tracking parameters', () => {
  it('strips utm_*, fbclid and Substack referral codes, keeps meaningful parameters', () => {
    assert.equal(
      stripTrackingParams('https://decodingml.substack.com/p/real-time-feature-pipelines-with?r=1ttoeh'),
      'https://decodingml.substack.com/p/real-time-feature-pipelines-with',
    );
    assert.equal(
      stripTrackingParams('https://example.com/a?id=7&utm_source=x&utm_medium=y&fbclid=z#sec'),
      'https://example.com/a?id=7#sec',
    );
    assert.equal(stripTrackingParams('https://example.com/search?q=rag'), 'https://example.com/search?q=rag');
    assert.equal(stripTrackingParams('not a url'), 'not a url');
  });

  it('cleans URLs inside text and keeps trailing punctuation', () => {
    assert.equal(
      cleanUrlsInText('See https://x.io/p?utm_campaign=a&page=2. Also http://y.org/?gclid=1!'),
      'See https://x.io/p?page=2. Also http://y.org/!',
    );
  });
});

describe('cleanMarkdown structure', () => {
  const page = [
    '# Site Name',
    '',
    'SubscribeSign in',
    '',
    'Share this post',
    '',
    '#### My Great Title',
    '',
    'example.substack.com',
    '',
    'Copy link',
    '',
    'Facebook',
    '',
    'Email',
    '',
    'Note',
    '',
    'Other',
    '',
    '# My Great Title',
    '',
    'Jane Doe',
    '',
    'Aug 17, 2024',
    '',
    '14',
    '',
    'Share',
    '',
    '## Setup',
    '',
    'First we install the packages we need for this small tutorial, then we',
    'import them. Read more at https://example.com/docs?utm_source=newsletter.',
    '',
    '    ',
    '    ',
    '    import torch',
    '    ',
    '    def f(x):',
    '        return {"a": x, "b": [1, 2]}  # comment; keep: punctuation!',
    '',
    'Then:',
    '',
    '  * first item',
    '',
    '  * second item with `code`',
    '',
    '\\- escaped dash item  ',
    '\\- another  ',
    '',
    '* * *',
    '',
    '#### Discussion about this post',
    '',
    'Comments',
    '',
    'Restacks',
    '',
    '© 2024 Jane Doe',
  ].join('\n');
  const out = cleanMarkdown(page, {
    title: 'My Great Title - by Jane Doe',
    author: 'Jane Doe',
    link: 'https://example.substack.com/p/x',
  });

  it('drops the page header, share widget, byline and footer', () => {
    for (const junk of [
      'SubscribeSign in',
      'Share this post',
      'Copy link',
      'Facebook',
      'example.substack.com',
      'Site Name',
      'Aug 17, 2024',
      'Comments',
      '© 2024',
      'Discussion',
    ]) {
      assert.ok(!out.includes(junk), `still contains ${junk}:\n${out}`);
    }
    assert.ok(!/^(Share|Note|Other|14|Jane Doe)$/m.test(out), out);
  });

  it('keeps headings, paragraphs (unwrapped), list items and code with its punctuation and indentation', () => {
    assert.match(out, /^## Setup$/m);
    assert.match(out, /First we install the packages we need for this small tutorial, then we import them\./);
    assert.match(out, /https:\/\/example\.com\/docs\./);
    assert.ok(
      out.includes(
        '```\nimport torch\n\ndef f(x):\n    return {"a": x, "b": [1, 2]}  # comment; keep: punctuation!\n```',
      ),
      out,
    );
    assert.match(out, /^- first item\n- second item with `code`$/m);
    assert.match(out, /^- escaped dash item\n- another$/m);
  });

  it('keeps newlines between blocks and collapses runs of blank lines', () => {
    assert.ok(out.split('\n').length > 10);
    assert.ok(!/\n{3,}/.test(out));
    assert.ok(!/[ \t]+$/m.test(out));
  });
});

describe('cleanTitle', () => {
  it('removes site decoration around the title', () => {
    assert.equal(
      cleanTitle('Real-time feature pipelines for RAG - by Paul Iusztin', 'Paul Iusztin'),
      'Real-time feature pipelines for RAG',
    );
    assert.equal(cleanTitle('Maxime Labonne - Fine-tune Llama 3.1', 'Maxime Labonne'), 'Fine-tune Llama 3.1');
    assert.equal(cleanTitle('Uncensor any LLM - Maxime Labonne', 'Maxime Labonne'), 'Uncensor any LLM');
    assert.equal(cleanTitle('Streaming Pipelines | Decoding ML'), 'Streaming Pipelines');
  });
});

describe('posts and repositories', () => {
  it('cleans a post, keeping its id, image and line structure', () => {
    const post: RawPostDocument = {
      id: 'p1',
      category: 'posts',
      platform: 'linkedin',
      author_id: 'a1',
      author_full_name: 'Jane Doe',
      content: {
        text: '𝗛𝗼𝘄 to chunk?\u200B\n\n→ by tokens\n→ not chars\n\nhttps://x.io/?utm_source=li\n\n...see more',
        image: 'https://img/1.png',
      },
    };
    const cleaned = cleanPost(post);
    assert.equal(cleaned.id, 'p1');
    assert.equal(cleaned.image, 'https://img/1.png');
    assert.equal(cleaned.content, 'How to chunk?\n\n→ by tokens → not chars\n\nhttps://x.io/');
  });

  it('cleans a repository file by file, code untouched but for whitespace and invisible characters', () => {
    const repo: RawRepositoryDocument = {
      id: 'r1',
      category: 'repositories',
      platform: 'github',
      author_id: 'a1',
      author_full_name: 'Jane Doe',
      name: 'demo',
      link: 'https://github.com/jane/demo?utm_source=x',
      content: {
        'src/b.py': 'def b():  \n    return "“quoted”"\u200B\n\n\n\n\nx = 1\n',
        'README.md': '# Demo\n\nA demo.\n',
        'package-lock.json': '{}',
        'logo.png': '\u0000PNG',
      },
    };
    const cleaned = cleanDocument(repo);
    assert.equal(cleaned.category, 'repositories');
    if (cleaned.category !== 'repositories') return;
    assert.equal(cleaned.link, 'https://github.com/jane/demo');
    assert.deepEqual(
      cleaned.files.map((f) => f.path),
      ['README.md', 'src/b.py'],
    );
    assert.equal(
      cleaned.content,
      '# File: README.md\n\n# Demo\n\nA demo.\n\n# File: src/b.py\n\ndef b():\n    return "“quoted”"\n\n\nx = 1',
    );
    for (const f of cleaned.files) assert.ok(cleaned.content.slice(f.start, f.end).startsWith(`# File: ${f.path}`));
    assert.deepEqual(cleanRepository(repo), cleaned);
  });
});

describe('the 76 real articles', () => {
  const raws = loadCorpusArticles();
  const cleaned = raws.map(cleanArticle);

  it('keeps every document id and produces non-empty Markdown starting with the title', () => {
    assert.equal(cleaned.length, 76);
    cleaned.forEach((c, i) => {
      assert.equal(c.id, raws[i]!.id);
      assert.ok(c.content.startsWith(`# ${c.title}`), c.content.slice(0, 80));
      assert.ok(c.content.length > 1500, `${c.link} too short: ${c.content.length}`);
    });
  });

  it('removes navigation, share/subscribe widgets and page footers', () => {
    const junkLines = [
      'Share this post',
      'SubscribeSign in',
      'Copy link',
      'Facebook',
      'Restacks',
      'Ready for more?',
      'No posts',
      'PreviousNext',
      'Start WritingGet the app',
      'Substack is the home for great culture',
      'Discussion about this post',
      'unblock scripts',
      'decodingml.substack.com',
      'LLM Course',
      'Hands-On GNNs',
      'Sections',
    ];
    for (const c of cleaned) {
      const lines = new Set(c.content.split('\n').map((l) => l.replace(/^[#\-*\s]+/, '').trim()));
      for (const junk of junkLines) assert.ok(!lines.has(junk), `${c.link} still has "${junk}"`);
      assert.ok(!c.content.includes('This site requires JavaScript'), c.link);
      assert.ok(!/© 20\d\d/.test(c.content), c.link);
      assert.ok(!c.content.includes('Sign up to discover human stories'), c.link);
      assert.ok(!c.content.includes('Recommended from Medium'), c.link);
      assert.ok(!/Open in appSign up/.test(c.content), c.link);
    }
  });

  it('keeps code blocks with their punctuation and newlines', () => {
    const withCode = cleaned.filter((c) => c.content.includes('```'));
    assert.ok(withCode.length >= 15, `only ${withCode.length} articles with code blocks`);
    const unsloth = cleaned.find((c) => c.title === 'Fine-tune Llama 3.1 Ultra-Efficiently with Unsloth')!;
    assert.ok(
      unsloth.content.includes(
        '```\nmodel = FastLanguageModel.get_peft_model(\n    model,\n    r=16,\n    lora_alpha=16,\n    lora_dropout=0,\n',
      ),
      'indented code block not kept verbatim',
    );
    assert.ok(
      unsloth.content.includes('model.push_to_hub_gguf("mlabonne/FineLlama-3.1-8B-GGUF", tokenizer, quant)\n```'),
    );
    for (const c of withCode)
      assert.equal((c.content.match(/^`{3,}/gm) ?? []).length % 2, 0, `unbalanced fences in ${c.link}`);
  });

  it('keeps paragraphs, headings and list items as separate lines', () => {
    for (const c of cleaned.filter((x) => x.platform !== 'medium')) {
      assert.ok((c.content.match(/\n\n/g) ?? []).length >= 10, `${c.link} lost its paragraphs`);
      assert.ok(/^#{2,6} \S/m.test(c.content), `${c.link} lost its headings`);
    }
    const abliteration = cleaned.find((c) => c.title === 'Uncensor any LLM with abliteration')!;
    assert.ok(
      abliteration.content.includes(
        'The third generation of Llama models provided fine-tunes (Instruct) versions that excel in understanding and following instructions.',
      ),
    );
    assert.match(abliteration.content, /^### References$/m);
    assert.match(abliteration.content, /^- FailSpy, "abliterator library," GitHub, 2024\.$/m);
  });

  it('leaves no invisible characters, fancy quotes, tracking parameters or repeated spaces in prose', () => {
    for (const c of cleaned) {
      assert.ok(!/[\u200B-\u200F\uFEFF\u00AD]/.test(c.content), c.link);
      assert.ok(!/[\u2018\u2019\u201C\u201D]/.test(c.content), c.link);
      assert.ok(!/[?&](utm_[a-z]+|r)=/.test(c.content), c.link);
      assert.ok(!c.link.includes('?r='), c.link);
      const prose = c.content.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, '');
      assert.ok(!/\S {2,}\S/.test(prose), `${c.link}: repeated spaces in prose`);
    }
  });

  it('recovers paragraphs and drops the page chrome of Medium pages whose text lost its line breaks', () => {
    const medium = cleaned.filter((c) => c.platform === 'medium');
    assert.equal(medium.length, 5);
    for (const c of medium) {
      assert.ok(!c.content.includes('min read·'), c.link);
      assert.ok(!c.content.includes('Written by Paul Iusztin'), c.link);
      assert.ok((c.content.match(/\n\n/g) ?? []).length >= 20, c.link);
    }
  });

  it('is deterministic', () => {
    assert.deepEqual(raws.slice(0, 10).map(cleanArticle), cleaned.slice(0, 10));
  });
});
