/** Adds the named counters of one activity result into a workflow's running totals. */
export function addCounts<Key extends string>(
  totals: Record<Key, number>,
  result: Readonly<Record<Key, number>>,
  keys: readonly Key[],
): void {
  for (const key of keys) totals[key] += result[key];
}
