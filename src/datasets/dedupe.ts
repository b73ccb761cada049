/**
 * Exact and near-duplicate removal of instructions.
 *
 * Exact: instructions equal after normalisation (Unicode NFKC, case, punctuation, whitespace).
 * Near: two instructions are near-duplicates when the Jaccard similarity of their *word sets* is ≥ `threshold`
 * (default 0.8) **and** the Jaccard similarity of their character 5-gram shingles is ≥ `charThreshold` (default
 * 0.6). Word sets catch rephrasings of short texts well ("How does LoRA reduce the memory needed for fine-tuning
 * large models?" vs "…needed when fine-tuning…": 0.85; vs "…for the fine-tuning of…": 0.92) while keeping
 * questions that differ in their key word ("How does DPO differ from PPO?" vs "…from SFT?": 0.71). The character
 * check is order-sensitive, so "Why is X better than Y?" and "Why is Y better than X?" (same word set) are both kept.
 *
 * The search is exact, not approximate (no MinHash error): prefix filtering — two sets with Jaccard ≥ t share a
 * member among their first |x| − ⌈t·|x|⌉ + 1 members in a global rare-first order — so only a handful of
 * candidates are verified per item. The first occurrence (in input order) is the one kept.
 */

export interface DedupeOptions {
  /** Word-set Jaccard similarity at or above which two instructions may be near-duplicates. Default 0.8. */
  threshold: number;
  /** Character-shingle Jaccard similarity they must also reach. Default 0.6. */
  charThreshold: number;
  /** Characters per shingle. Default 5. */
  shingleSize: number;
}

export const DEFAULT_DEDUPE_OPTIONS: Readonly<DedupeOptions> = { threshold: 0.8, charThreshold: 0.6, shingleSize: 5 };

export function normalizeInstruction(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Character k-grams of the normalised text (the whole text when shorter than k). */
export function shingles(normalized: string, k = DEFAULT_DEDUPE_OPTIONS.shingleSize): Set<string> {
  const set = new Set<string>();
  if (normalized.length <= k) {
    if (normalized) set.add(normalized);
    return set;
  }
  for (let i = 0; i + k <= normalized.length; i += 1) set.add(normalized.slice(i, i + k));
  return set;
}

/** The distinct words of the normalised text. */
export function wordSet(normalized: string): Set<string> {
  return new Set(normalized.split(' ').filter(Boolean));
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const s of small) if (large.has(s)) shared += 1;
  return shared / (a.size + b.size - shared);
}

export interface DedupeResult<T> {
  kept: T[];
  dropped: {
    item: T;
    reason: 'duplicate-instruction' | 'near-duplicate-instruction';
    duplicateOf: T;
    similarity: number;
  }[];
}

/** Removes items whose instruction duplicates (exactly or nearly) an earlier item's. Keeps input order. */
export function dedupeByInstruction<T>(
  items: readonly T[],
  instructionOf: (item: T) => string,
  options: Partial<DedupeOptions> = {},
): DedupeResult<T> {
  const { threshold, charThreshold, shingleSize } = { ...DEFAULT_DEDUPE_OPTIONS, ...options };
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  const normalized = items.map((item) => normalizeInstruction(instructionOf(item)));
  const sets = normalized.map(wordSet);
  const charSets = new Map<number, Set<string>>();
  const charsOf = (i: number) => {
    let set = charSets.get(i);
    if (!set) charSets.set(i, (set = shingles(normalized[i] ?? '', shingleSize)));
    return set;
  };
  // Global order: rare words first, ties by text, so prefixes are short and selective.
  const frequency = new Map<string, number>();
  for (const set of sets) for (const s of set) frequency.set(s, (frequency.get(s) ?? 0) + 1);
  const ordered = sets.map((set) =>
    [...set].sort((a, b) => (frequency.get(a) ?? 0) - (frequency.get(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0)),
  );

  const result: DedupeResult<T> = { kept: [], dropped: [] };
  const exact = new Map<string, number>();
  const index = new Map<string, number[]>();
  items.forEach((item, i) => {
    const text = normalized[i] ?? '';
    const firstExact = exact.get(text);
    if (firstExact !== undefined) {
      result.dropped.push({
        item,
        reason: 'duplicate-instruction',
        duplicateOf: items[firstExact] as T,
        similarity: 1,
      });
      return;
    }
    const set = sets[i] as Set<string>;
    const order = ordered[i] as string[];
    const prefix = order.slice(0, order.length - Math.ceil(threshold * order.length) + 1);
    let best: { index: number; similarity: number } | undefined;
    const checked = new Set<number>();
    for (const s of prefix) {
      for (const candidate of index.get(s) ?? []) {
        if (checked.has(candidate)) continue;
        checked.add(candidate);
        const similarity = jaccard(set, sets[candidate] as Set<string>);
        if (similarity < threshold || jaccard(charsOf(i), charsOf(candidate)) < charThreshold) continue;
        if (!best || similarity > best.similarity || (similarity === best.similarity && candidate < best.index)) {
          best = { index: candidate, similarity };
        }
      }
    }
    if (best) {
      result.dropped.push({
        item,
        reason: 'near-duplicate-instruction',
        duplicateOf: items[best.index] as T,
        similarity: best.similarity,
      });
      return;
    }
    exact.set(text, i);
    for (const s of prefix) {
      const list = index.get(s);
      if (list) list.push(i);
      else index.set(s, [i]);
    }
    result.kept.push(item);
  });
  return result;
}
