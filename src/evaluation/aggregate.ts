/**
 * Aggregation and the gate: means over successfully judged samples only (failures are counted, never scored), then
 * pass/fail against the thresholds, with one reason per failed check.
 */
import type { JudgeFailureReason, Judgement, JudgeVerdict, RagJudgeVerdict } from './judge';
import type { EvaluationScores, EvaluationThresholds } from './types';

export interface ScoreSummary {
  /** Mean, rounded to 3 decimals; 0 when nothing was scored. */
  mean: number;
  /** How many samples got 1, 2 and 3. */
  distribution: { 1: number; 2: number; 3: number };
}

export interface JudgeAggregate {
  accuracy: ScoreSummary;
  style: ScoreSummary;
  /** Samples with a valid verdict. */
  samples: number;
  judgeFailures: number;
  failureReasons: Partial<Record<JudgeFailureReason, number>>;
}

export interface RagAggregate {
  faithfulness: ScoreSummary;
  contextRelevance: ScoreSummary;
  samples: number;
  judgeFailures: number;
  failureReasons: Partial<Record<JudgeFailureReason, number>>;
  /** Questions with a known source, and how many of them had it among the retrieved sources. */
  hitRate?: number;
  withKnownSource: number;
  hits: number;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

export function summarize(scores: readonly number[]): ScoreSummary {
  const distribution = { 1: 0, 2: 0, 3: 0 };
  for (const s of scores) distribution[s as 1 | 2 | 3] += 1;
  return { mean: scores.length ? round(scores.reduce((a, b) => a + b, 0) / scores.length) : 0, distribution };
}

function failures<T>(judgements: readonly Judgement<T>[]): Pick<JudgeAggregate, 'judgeFailures' | 'failureReasons'> {
  const failureReasons: Partial<Record<JudgeFailureReason, number>> = {};
  let judgeFailures = 0;
  for (const j of judgements) {
    if (j.ok) continue;
    judgeFailures += 1;
    failureReasons[j.reason] = (failureReasons[j.reason] ?? 0) + 1;
  }
  return { judgeFailures, failureReasons };
}

export function aggregateJudgements(judgements: readonly Judgement<JudgeVerdict>[]): JudgeAggregate {
  const ok = judgements.flatMap((j) => (j.ok ? [j.verdict] : []));
  return {
    accuracy: summarize(ok.map((v) => v.accuracy.score)),
    style: summarize(ok.map((v) => v.style.score)),
    samples: ok.length,
    ...failures(judgements),
  };
}

export function aggregateRag(
  judgements: readonly Judgement<RagJudgeVerdict>[],
  retrieval: readonly { knownSource: boolean; hit: boolean }[] = [],
): RagAggregate {
  const ok = judgements.flatMap((j) => (j.ok ? [j.verdict] : []));
  const known = retrieval.filter((r) => r.knownSource);
  const hits = known.filter((r) => r.hit).length;
  return {
    faithfulness: summarize(ok.map((v) => v.faithfulness.score)),
    contextRelevance: summarize(ok.map((v) => v.contextRelevance.score)),
    samples: ok.length,
    ...failures(judgements),
    ...(known.length ? { hitRate: round(hits / known.length) } : {}),
    withKnownSource: known.length,
    hits,
  };
}

/** The contract's flat scores from the aggregates (RAG fields only when RAG samples were judged). */
export function toScores(judge: JudgeAggregate, rag?: RagAggregate): EvaluationScores {
  return {
    accuracy: judge.accuracy.mean,
    style: judge.style.mean,
    ...(rag && rag.samples > 0
      ? { faithfulness: rag.faithfulness.mean, contextRelevance: rag.contextRelevance.mean }
      : {}),
    ...(rag?.hitRate !== undefined ? { hitRate: rag.hitRate } : {}),
    samples: judge.samples,
    judgeFailures: judge.judgeFailures + (rag?.judgeFailures ?? 0),
  };
}

export interface GateInput {
  scores: EvaluationScores;
  thresholds: EvaluationThresholds;
  /** Judge calls attempted for the candidate (answers + RAG samples). */
  judged: number;
  /** Fail when judgeFailures / judged is above this. */
  maxJudgeFailureRate: number;
  /** RAG was requested but could not be measured (no questions, no RAG library). */
  ragUnavailable?: string;
}

/** Pass/fail with one reason per failed check; a threshold for a metric that was not measured fails the gate. */
export function decideGate(input: GateInput): { passed: boolean; reasons: string[] } {
  const { scores, thresholds } = input;
  const reasons: string[] = [];
  if (scores.samples === 0) reasons.push('no sample was judged successfully');
  const check = (name: keyof EvaluationThresholds, value: number | undefined) => {
    const min = thresholds[name];
    if (min === undefined) return;
    if (value === undefined) {
      reasons.push(
        `${name}: not measured${input.ragUnavailable ? ` (${input.ragUnavailable})` : ''}, threshold ${min}`,
      );
    } else if (value < min) {
      reasons.push(`${name} ${value.toFixed(2)} < threshold ${min}`);
    }
  };
  if (scores.samples > 0) {
    check('accuracy', scores.accuracy);
    check('style', scores.style);
  }
  check('faithfulness', scores.faithfulness);
  check('contextRelevance', scores.contextRelevance);
  if (input.judged > 0) {
    const rate = scores.judgeFailures / input.judged;
    if (rate > input.maxJudgeFailureRate) {
      reasons.push(
        `judge failures ${scores.judgeFailures}/${input.judged} (${(rate * 100).toFixed(1)} %) > allowed ${(input.maxJudgeFailureRate * 100).toFixed(1)} %`,
      );
    }
  }
  return { passed: reasons.length === 0, reasons };
}

/** Thresholds of a run: the configured ones, overridden by the run's (an explicit null clears an optional one). */
export function effectiveThresholds(
  configured: { accuracy: number; style: number; faithfulness?: number; contextRelevance?: number },
  overrides: Partial<EvaluationThresholds> = {},
): EvaluationThresholds {
  const merged: EvaluationThresholds = { accuracy: configured.accuracy, style: configured.style };
  const faithfulness = 'faithfulness' in overrides ? overrides.faithfulness : configured.faithfulness;
  const contextRelevance = 'contextRelevance' in overrides ? overrides.contextRelevance : configured.contextRelevance;
  if (overrides.accuracy !== undefined) merged.accuracy = overrides.accuracy;
  if (overrides.style !== undefined) merged.style = overrides.style;
  if (typeof faithfulness === 'number') merged.faithfulness = faithfulness;
  if (typeof contextRelevance === 'number') merged.contextRelevance = contextRelevance;
  for (const [name, value] of Object.entries(merged) as [string, number][]) {
    if (!Number.isFinite(value) || value < 0 || value > 3)
      throw new RangeError(`threshold ${name} must be between 0 and 3, got ${value}`);
  }
  return merged;
}
