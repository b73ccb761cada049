/**
 * The evaluation report: one JSON document (everything a later comparison needs) and its Markdown rendering, both
 * written to the artifact store and recorded as one ArtifactRef of kind `evaluation-report`.
 */
import type { JudgeAggregate, RagAggregate, ScoreSummary } from './aggregate';
import type { EvaluationScores, EvaluationThresholds, GeneratorConfig } from './types';

export const REPORT_SCHEMA = 'twin.evaluation-report/1';

export interface ModelEvaluation {
  model: string;
  generator: GeneratorConfig;
  judge: JudgeAggregate;
  scores: EvaluationScores;
  /** Generation figures (tokens, seconds, device) when the backend reports them. */
  generation: Record<string, unknown>;
  /** Up to 5 judged examples (lowest accuracy first), for a reader of the report. */
  examples: {
    instruction: string;
    answer: string;
    accuracy?: number;
    style?: number;
    analysis?: string;
    failure?: string;
  }[];
}

export interface EvaluationReport {
  schema: typeof REPORT_SCHEMA;
  model: string;
  modelArtifactId?: string;
  dataset: { artifactId: string; testUri: string; samples: number };
  passed: boolean;
  reasons: string[];
  thresholds: EvaluationThresholds;
  maxJudgeFailureRate: number;
  judge: { model: string; promptVersion: string; attempts: number };
  candidate: ModelEvaluation;
  baseline?: ModelEvaluation;
  rag?:
    | (RagAggregate & {
        questionSet?: { file: string; version: string; checksum: string };
        origins: Record<string, number>;
        errors: number;
      })
    | { skipped: string };
  cacheKey: string;
  workflowId: string;
  createdAt: string;
}

const fmt = (value: number | undefined) => (value === undefined ? '–' : value.toFixed(2));
const dist = (s: ScoreSummary) => `${s.distribution[1]} / ${s.distribution[2]} / ${s.distribution[3]}`;
const cell = (text: string, max = 160) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return (flat.length > max ? `${flat.slice(0, max - 1)}…` : flat).replace(/\|/g, '\\|');
};

function delta(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return '–';
  const d = a - b;
  return `${d >= 0 ? '+' : ''}${d.toFixed(2)}`;
}

export function renderMarkdown(report: EvaluationReport): string {
  const c = report.candidate;
  const lines: string[] = [];
  lines.push(`# Evaluation of ${report.model}: ${report.passed ? 'PASSED' : 'FAILED'}`, '');
  if (report.reasons.length) {
    lines.push('Failed checks:', '', ...report.reasons.map((r) => `- ${r}`), '');
  }
  lines.push(
    `Dataset \`${report.dataset.artifactId}\` (test split, ${report.dataset.samples} samples) · judge \`${report.judge.model}\` ` +
      `(${report.judge.promptVersion}) · generator ${c.generator.backend}${c.generator.endpointName ? ` \`${c.generator.endpointName}\`` : ''} · ${report.createdAt}`,
    '',
  );
  const t = report.thresholds;
  const b = report.baseline;
  lines.push(
    `| metric (1–3) | ${report.model} | threshold |${b ? ` ${b.model} | Δ |` : ''}`,
    `| --- | --- | --- |${b ? ' --- | --- |' : ''}`,
    `| accuracy | ${fmt(c.scores.accuracy)} | ${fmt(t.accuracy)} |${b ? ` ${fmt(b.scores.accuracy)} | ${delta(c.scores.accuracy, b.scores.accuracy)} |` : ''}`,
    `| style | ${fmt(c.scores.style)} | ${fmt(t.style)} |${b ? ` ${fmt(b.scores.style)} | ${delta(c.scores.style, b.scores.style)} |` : ''}`,
    `| faithfulness (RAG) | ${fmt(c.scores.faithfulness)} | ${fmt(t.faithfulness)} |${b ? ' – | – |' : ''}`,
    `| context relevance (RAG) | ${fmt(c.scores.contextRelevance)} | ${fmt(t.contextRelevance)} |${b ? ' – | – |' : ''}`,
    '',
    `Judged samples: ${c.scores.samples}; judge failures: ${c.judge.judgeFailures}` +
      (Object.keys(c.judge.failureReasons).length
        ? ` (${Object.entries(c.judge.failureReasons)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`
        : '') +
      `; allowed failure rate ${(report.maxJudgeFailureRate * 100).toFixed(1)} %.`,
    `Score distribution (1 / 2 / 3): accuracy ${dist(c.judge.accuracy)}, style ${dist(c.judge.style)}.`,
  );
  if (b)
    lines.push(
      `Baseline \`${b.model}\`: accuracy ${dist(b.judge.accuracy)}, style ${dist(b.judge.style)}, judge failures ${b.judge.judgeFailures}.`,
    );
  lines.push('');
  if (report.rag && 'skipped' in report.rag) {
    lines.push(`RAG metrics: skipped (${report.rag.skipped}).`, '');
  } else if (report.rag) {
    const r = report.rag;
    lines.push(
      '## RAG',
      '',
      `Samples judged: ${r.samples} (${
        Object.entries(r.origins)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }); judge failures ${r.judgeFailures}; questions the RAG service failed on: ${r.errors}.`,
      `Faithfulness ${fmt(r.faithfulness.mean)} (${dist(r.faithfulness)}), context relevance ${fmt(r.contextRelevance.mean)} (${dist(r.contextRelevance)})` +
        (r.hitRate !== undefined
          ? `, retrieval hit rate ${(r.hitRate * 100).toFixed(1)} % (${r.hits}/${r.withKnownSource} questions with a known source).`
          : '.'),
      ...(r.questionSet
        ? [
            `Question set: ${r.questionSet.file} version ${r.questionSet.version} (${r.questionSet.checksum.slice(0, 19)}).`,
          ]
        : []),
      '',
    );
  }
  if (c.examples.length) {
    lines.push(
      '## Examples (lowest accuracy first)',
      '',
      '| instruction | answer | acc | style | judge |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const e of c.examples) {
      lines.push(
        `| ${cell(e.instruction, 100)} | ${cell(e.answer)} | ${e.accuracy ?? '–'} | ${e.style ?? '–'} | ${cell(e.failure ? `failed: ${e.failure}` : (e.analysis ?? ''), 200)} |`,
      );
    }
    lines.push('');
  }
  if (Object.keys(c.generation).length)
    lines.push(
      `Generation: ${Object.entries(c.generation)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')}.`,
      '',
    );
  lines.push(`Workflow \`${report.workflowId}\` · cache key \`${report.cacheKey}\``, '');
  return lines.join('\n');
}
