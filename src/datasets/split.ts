/**
 * Train/test split per category with a fixed seed.
 *
 * The shuffle is a seeded hash order: samples sort by sha256(seed + sample id). That is a deterministic
 * permutation which, unlike shuffling with a seeded PRNG, does not depend on the order the samples arrived in
 * (extracts answered in parallel finish in any order) and moves only the new samples when a sample is added.
 * Each category is split on its own, so every category is represented in the test split in proportion.
 *
 * Test size per category: ceil(n · fraction), as Hugging Face `train_test_split` does, but at most n − 1 (a
 * category with one sample goes to train) and 0 when the fraction is 0.
 */
import { sha256 } from '../domain/artifacts';

export const DEFAULT_TEST_FRACTION = { instruction: 0.1, preference: 0.05 } as const;
export const DEFAULT_SPLIT_SEED = 42;

export interface SplitOptions<T> {
  testFraction: number;
  seed: number;
  categoryOf: (item: T) => string;
  idOf: (item: T) => string;
}

export interface SplitResult<T> {
  train: T[];
  test: T[];
  perCategory: Record<string, { train: number; test: number }>;
}

export function testSizeFor(n: number, fraction: number): number {
  if (n <= 1 || fraction <= 0) return 0;
  return Math.min(n - 1, Math.ceil(n * fraction - 1e-9));
}

/** The items in seeded hash order (ties, i.e. equal ids, keep input order). */
export function seededOrder<T>(items: readonly T[], seed: number, idOf: (item: T) => string): T[] {
  return items
    .map((item, position) => ({ item, position, key: sha256(`${seed}:${idOf(item)}`) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.position - b.position))
    .map((entry) => entry.item);
}

export function splitByCategory<T>(items: readonly T[], options: SplitOptions<T>): SplitResult<T> {
  const { testFraction, seed, categoryOf, idOf } = options;
  if (!(testFraction >= 0 && testFraction < 1))
    throw new RangeError(`testFraction must be in [0, 1), got ${testFraction}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const byCategory = new Map<string, T[]>();
  for (const item of items) {
    const category = categoryOf(item);
    const list = byCategory.get(category);
    if (list) list.push(item);
    else byCategory.set(category, [item]);
  }
  const result: SplitResult<T> = { train: [], test: [], perCategory: {} };
  for (const category of [...byCategory.keys()].sort()) {
    const ordered = seededOrder(byCategory.get(category) ?? [], seed, idOf);
    const testSize = testSizeFor(ordered.length, testFraction);
    result.test.push(...ordered.slice(0, testSize));
    result.train.push(...ordered.slice(testSize));
    result.perCategory[category] = { train: ordered.length - testSize, test: testSize };
  }
  // Interleave categories in the training file too (sorted per category above): one seeded order over all.
  result.train = seededOrder(result.train, seed, idOf);
  result.test = seededOrder(result.test, seed, idOf);
  return result;
}
