/**
 * Feature-pipeline benchmark on the 76 real articles (../shared/corpus/ArticleDocument.json):
 *
 * 1. whole pipeline — clean + chunk + embed (all-MiniLM-L6-v2, default local embedder: a worker thread per core):
 *    documents/s, chunks/s;
 * 2. embedding alone on the same chunks: chunks/s, tokens/s, CPU seconds, where the time went;
 * 3. Python sentence-transformers (PyTorch) on the same chunk texts in the same run, and the TS/Python ratio, plus
 *    the cosine agreement of the two sets of vectors;
 * 4. with --sweep: ONNX thread counts, worker threads, batch sizes, fused/plain and int8 graphs on a subset.
 *
 * Run:   npx tsx bench/embedding.bench.ts [--sweep] [--sweep-limit 256] [--limit N] [--no-python] [--json FILE]
 * Needs: scripts/install-embedding-model.sh (model files and the Python venv used for the baseline).
 * The machine is shared: wall-clock figures move with its load, so CPU seconds are printed beside them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rawDocumentFromRecord, type RawArticleDocument } from '../src/domain/documents';
import { chunkDocument } from '../src/features/chunking';
import { cleanArticle } from '../src/features/cleaning';
import { cosineSimilarity, type Embedder } from '../src/features/embedder';
import { OnnxEmbedder, type OnnxEmbedderOptions } from '../src/features/embedder-onnx';
import { WorkerPoolEmbedder } from '../src/features/embedder-pool';
import { twinHome } from '../src/features/model-files';
import { loadTokenCounter } from '../src/features/tokenizer';

const { values: args } = parseArgs({
  options: {
    sweep: { type: 'boolean', default: false },
    'sweep-limit': { type: 'string', default: '256' },
    limit: { type: 'string' },
    'no-python': { type: 'boolean', default: false },
    json: { type: 'string' },
    corpus: { type: 'string' },
  },
});

const REPO = resolve(__dirname, '..');
const CORPUS =
  args.corpus ?? join(process.env.TWIN_CORPUS_DIR ?? join(REPO, '..', 'shared', 'corpus'), 'ArticleDocument.json');
const PYTHON = join(twinHome(), 'venv-export', 'bin', 'python');

interface Timing {
  wallS: number;
  cpuS: number;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, Timing]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const cpu = process.cpuUsage(c0);
  return [result, { wallS: (performance.now() - t0) / 1000, cpuS: (cpu.user + cpu.system) / 1e6 }];
}

interface PythonResult {
  n: number;
  batch_size: number;
  threads: number;
  load_s: number;
  embed_wall_s: number;
  embed_cpu_s: number;
  chunks_per_s: number;
  peak_rss_mb: number;
  torch: string;
  sentence_transformers: string;
}

function runPython(texts: string[], batchSize: number): { result: PythonResult; vectors: Float32Array } {
  const dir = mkdtempSync(join(tmpdir(), 'embed-bench-'));
  try {
    const textsFile = join(dir, 'chunks.json');
    const outFile = join(dir, 'result.json');
    const vectorsFile = join(dir, 'vectors.f32');
    writeFileSync(textsFile, JSON.stringify(texts));
    execFileSync(
      PYTHON,
      [
        join(REPO, 'bench', 'sentence_transformers_baseline.py'),
        '--texts',
        textsFile,
        '--out',
        outFile,
        '--vectors',
        vectorsFile,
        '--batch-size',
        String(batchSize),
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
      },
    );
    const result = JSON.parse(readFileSync(outFile, 'utf8')) as PythonResult;
    const buf = readFileSync(vectorsFile);
    return { result, vectors: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x: number, d = 1): string => x.toFixed(d);

interface SweepConfig {
  name: string;
  workers: number;
  options: OnnxEmbedderOptions;
}

async function makeEmbedder(cfg: SweepConfig): Promise<Embedder> {
  return cfg.workers > 0
    ? WorkerPoolEmbedder.create({ ...cfg.options, workers: cfg.workers })
    : OnnxEmbedder.create(cfg.options);
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  const report: Record<string, unknown> = { cores, loadavgStart: loadavg() };
  console.log(
    `# feature pipeline benchmark — ${cores} cores, load average ${loadavg()
      .map((x) => fmt(x, 2))
      .join(' ')}`,
  );
  console.log(`# command: npx tsx bench/embedding.bench.ts ${process.argv.slice(2).join(' ')}`.trimEnd());

  const records = JSON.parse(readFileSync(CORPUS, 'utf8')) as Record<string, unknown>[];
  const raws = records.map((r) => rawDocumentFromRecord('articles', r) as RawArticleDocument);

  // Loading (once per worker in production) is reported apart from throughput.
  const [counter, loadTok] = await timed(() => loadTokenCounter());
  // The default local embedder: one worker thread per core, one ONNX thread each, fused fp32 graph.
  const [embedder, loadModel] = await timed(() => WorkerPoolEmbedder.create({}));
  await embedder.embed(['warm-up']);
  console.log(
    `load: tokenizer ${fmt(loadTok.wallS, 2)} s, model ${fmt(loadModel.wallS, 2)} s (default local embedder: ${cores} worker threads x 1 ONNX thread, fused fp32, batch 16)`,
  );

  // 1. Whole pipeline.
  const [cleaned, tClean] = await timed(() => raws.map(cleanArticle));
  const [chunksAll, tChunk] = await timed(() => cleaned.flatMap((d) => chunkDocument(d, counter)));
  const limit = args.limit ? Number(args.limit) : chunksAll.length;
  const chunks = chunksAll.slice(0, limit);
  const texts = chunks.map((c) => c.content);
  const statsBefore = { ...embedder.stats };
  const [vectors, tEmbed] = await timed(() => embedder.embed(texts));
  const tokens = embedder.stats.tokens - statsBefore.tokens;
  const docs = limit === chunksAll.length ? raws.length : new Set(chunks.map((c) => c.document_id)).size;
  const pipeWall = tClean.wallS + tChunk.wallS + tEmbed.wallS;
  const pipeCpu = tClean.cpuS + tChunk.cpuS + tEmbed.cpuS;
  console.log(`\n## 1. clean + chunk + embed (${docs} documents → ${chunks.length} chunks, ${tokens} tokens)`);
  console.log(
    `clean ${fmt(tClean.wallS, 2)} s · chunk ${fmt(tChunk.wallS, 2)} s · embed ${fmt(tEmbed.wallS, 2)} s · total ${fmt(pipeWall, 2)} s wall, ${fmt(pipeCpu, 1)} s CPU`,
  );
  console.log(`pipeline: ${fmt(docs / pipeWall, 2)} documents/s, ${fmt(chunks.length / pipeWall, 2)} chunks/s`);

  // 2. Embedding alone.
  const st = embedder.stats;
  const share = (x: number): string => `${fmt((100 * x) / (st.tokenizeMs + st.inferenceMs + st.poolMs), 0)}%`;
  console.log(`\n## 2. embedding alone`);
  console.log(
    `${fmt(chunks.length / tEmbed.wallS, 2)} chunks/s, ${fmt(tokens / tEmbed.wallS, 0)} tokens/s (wall); ${fmt(chunks.length / tEmbed.cpuS, 2)} chunks per CPU-second`,
  );
  console.log(`time: tokenize ${share(st.tokenizeMs)}, ONNX ${share(st.inferenceMs)}, pooling ${share(st.poolMs)}`);
  const pipelineRss = process.resourceUsage().maxRSS / 1024;
  console.log(`peak RSS after the pipeline (tokenizer, corpus, ${cores} worker sessions): ${fmt(pipelineRss, 0)} MB`);
  report.pipeline = {
    docs,
    chunks: chunks.length,
    tokens,
    clean: tClean,
    chunk: tChunk,
    embed: tEmbed,
    docsPerS: docs / pipeWall,
    chunksPerS: chunks.length / pipeWall,
    peakRssMb: pipelineRss,
  };
  report.embedding = {
    chunksPerS: chunks.length / tEmbed.wallS,
    chunksPerCpuS: chunks.length / tEmbed.cpuS,
    tokensPerS: tokens / tEmbed.wallS,
    stats: st,
  };

  // 3. Python baseline on the same chunks.
  if (!args['no-python']) {
    const { result: py, vectors: pyVectors } = runPython(texts, 32);
    const cos = vectors.map((v, i) => cosineSimilarity(v, pyVectors.subarray(i * 384, (i + 1) * 384)));
    const ratio = chunks.length / tEmbed.wallS / py.chunks_per_s;
    const cpuRatio = py.embed_cpu_s / tEmbed.cpuS;
    console.log(
      `\n## 3. Python sentence-transformers ${py.sentence_transformers} (torch ${py.torch}, ${py.threads} threads, batch ${py.batch_size}) on the same ${py.n} chunks`,
    );
    console.log(
      `${fmt(py.chunks_per_s, 2)} chunks/s (${fmt(py.embed_wall_s, 1)} s wall, ${fmt(py.embed_cpu_s, 1)} s CPU), peak RSS ${fmt(py.peak_rss_mb, 0)} MB`,
    );
    console.log(`TS/Python: ${fmt(ratio, 2)}x chunks/s (wall), ${fmt(cpuRatio, 2)}x per CPU-second`);
    console.log(
      `agreement: cosine(TS, Python) min ${fmt(Math.min(...cos), 6)}, mean ${fmt(cos.reduce((a, b) => a + b, 0) / cos.length, 6)}`,
    );
    report.python = { ...py, ratioWall: ratio, ratioCpu: cpuRatio, cosineMin: Math.min(...cos) };
  }
  await embedder.close();

  // 4. Settings sweep on a subset.
  if (args.sweep) {
    const n = Math.min(Number(args['sweep-limit']), texts.length);
    // Spread over the corpus: every k-th chunk, so lengths are representative.
    const step = texts.length / n;
    const subset = Array.from({ length: n }, (_, i) => texts[Math.floor(i * step)]!);
    const configs: SweepConfig[] = [
      { name: `fused fp32, 1 thread, batch 32`, workers: 0, options: { intraOpThreads: 1, batchSize: 32 } },
      { name: `fused fp32, ${cores} threads, batch 8`, workers: 0, options: { intraOpThreads: cores, batchSize: 8 } },
      { name: `fused fp32, ${cores} threads, batch 32`, workers: 0, options: { intraOpThreads: cores, batchSize: 32 } },
      { name: `fused fp32, ${cores} threads, batch 64`, workers: 0, options: { intraOpThreads: cores, batchSize: 64 } },
      {
        name: `plain fp32, ${cores} threads, batch 32`,
        workers: 0,
        options: { optimized: false, intraOpThreads: cores, batchSize: 32 },
      },
      { name: `fused fp32, ${cores} workers x 1 thread, batch 16`, workers: cores, options: { batchSize: 16 } },
      {
        name: `fused int8, ${cores} threads, batch 32`,
        workers: 0,
        options: { quantized: true, intraOpThreads: cores, batchSize: 32 },
      },
      {
        name: `plain int8, ${cores} threads, batch 32`,
        workers: 0,
        options: { quantized: true, optimized: false, intraOpThreads: cores, batchSize: 32 },
      },
      {
        name: `fused int8, ${cores} workers x 1 thread, batch 16`,
        workers: cores,
        options: { quantized: true, batchSize: 16 },
      },
    ];
    console.log(`\n## 4. settings sweep on ${n} chunks (every ${fmt(step, 1)}th)`);
    console.log('| setting | chunks/s (wall) | chunks per CPU-s |\n| --- | ---: | ---: |');
    const rows: Array<Record<string, unknown>> = [];
    if (!args['no-python']) {
      const { result: py } = runPython(subset, 32);
      console.log(
        `| Python sentence-transformers, torch ${py.threads} threads, batch 32 | ${fmt(py.chunks_per_s, 2)} | ${fmt(py.n / py.embed_cpu_s, 2)} |`,
      );
      rows.push({ name: 'python', chunksPerS: py.chunks_per_s, chunksPerCpuS: py.n / py.embed_cpu_s });
    }
    for (const cfg of configs) {
      const e = await makeEmbedder(cfg);
      await e.embed(subset.slice(0, 4));
      const [, t] = await timed(() => e.embed(subset));
      await e.close();
      // Worker threads' CPU is part of this process's CPU usage.
      console.log(`| ${cfg.name} | ${fmt(n / t.wallS, 2)} | ${fmt(n / t.cpuS, 2)} |`);
      rows.push({ name: cfg.name, chunksPerS: n / t.wallS, chunksPerCpuS: n / t.cpuS });
    }
    report.sweep = rows;
  }

  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(
    `\npeak RSS at the end (includes any sweep sessions): ${fmt(rss, 0)} MB; load average at end ${loadavg()
      .map((x) => fmt(x, 2))
      .join(' ')}`,
  );
  report.peakRssMb = rss;
  report.loadavgEnd = loadavg();
  if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
