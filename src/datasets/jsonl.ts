/**
 * JSON Lines: one JSON object per line, UTF-8, `\n` after every line (also the last), keys in a fixed order, so
 * the same rows always give the same bytes (and the same checksum / dataset version). Readable as is by Hugging
 * Face `datasets.load_dataset("json", data_files=...)`, pandas `read_json(lines=True)` and TRL.
 */
import type { z } from 'zod';
import { ROW_SCHEMAS } from './validation';
import type { DatasetRow, DatasetType, InstructionRow, PreferenceRow } from './types';

/** Column order of each dataset type's rows. */
export const COLUMNS = {
  instruction: ['instruction', 'output'],
  preference: ['prompt', 'chosen', 'rejected'],
} as const satisfies Record<DatasetType, readonly string[]>;

/** Serialises objects as JSONL; with `columns`, each line holds exactly those keys in that order. */
export function toJsonl(rows: readonly object[], columns?: readonly string[]): string {
  return rows
    .map((row) => {
      if (!columns) return `${JSON.stringify(row)}\n`;
      const record = row as Record<string, unknown>;
      return `${JSON.stringify(Object.fromEntries(columns.map((column) => [column, record[column]])))}\n`;
    })
    .join('');
}

export class JsonlError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'JsonlError';
  }
}

/** Parses JSONL (blank lines ignored); with a schema, every row must match it. Errors name the line. */
export function parseJsonl<T = unknown>(text: string, schema?: z.ZodType<T>): T[] {
  const rows: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new JsonlError(`not JSON: ${(error as Error).message}`, i + 1);
    }
    if (schema) {
      const parsed = schema.safeParse(value);
      if (!parsed.success)
        throw new JsonlError(
          parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
          i + 1,
        );
      rows.push(parsed.data);
    } else {
      rows.push(value as T);
    }
  });
  return rows;
}

/** The rows of a dataset file, checked against the dataset type's row schema (exact columns). */
export function parseDatasetRows(type: 'instruction', text: string): InstructionRow[];
export function parseDatasetRows(type: 'preference', text: string): PreferenceRow[];
export function parseDatasetRows(type: DatasetType, text: string): DatasetRow[];
export function parseDatasetRows(type: DatasetType, text: string): DatasetRow[] {
  return parseJsonl<DatasetRow>(text, ROW_SCHEMAS[type]);
}

export function datasetRowsToJsonl(type: DatasetType, rows: readonly DatasetRow[]): string {
  return toJsonl(rows, COLUMNS[type]);
}
