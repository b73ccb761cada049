/** Dataset pipeline library: extracts, prompts, generation, validation, filters, dedupe, split, JSONL, manifests. */
export * from './types';
export {
  DEFAULT_EXTRACT_OPTIONS,
  extractId,
  extractsFromDocuments,
  splitIntoExtracts,
  type ExtractionStats,
  type ExtractOptions,
} from './extracts';
export {
  EXTRACT_CLOSE,
  EXTRACT_OPEN,
  INSTRUCTION_TEMPLATE,
  PREFERENCE_TEMPLATE,
  PROMPT_TEMPLATES,
  promptVersion,
  renderPrompt,
  type PromptTemplate,
  type RenderedPrompt,
  type RenderOptions,
} from './prompts';
export {
  ITEM_SCHEMAS,
  ROW_SCHEMAS,
  instructionPairSchema,
  instructionRowSchema,
  parseItems,
  preferenceRowSchema,
  preferenceTripleSchema,
  responseSchema,
  type ParsedItems,
} from './validation';
export {
  DROP_REASONS,
  MIN_CHOSEN_CHARS,
  checkInstructionPair,
  checkItem,
  checkPreferenceTriple,
  emptyDropCounts,
  endsWithTerminalPunctuation,
  isVerbatim,
  mentionsSource,
  normalizeWhitespace,
  startsWithCapital,
  type DropReason,
} from './filters';
export {
  DEFAULT_DEDUPE_OPTIONS,
  dedupeByInstruction,
  jaccard,
  normalizeInstruction,
  shingles,
  wordSet,
  type DedupeOptions,
  type DedupeResult,
} from './dedupe';
export {
  DEFAULT_SPLIT_SEED,
  DEFAULT_TEST_FRACTION,
  seededOrder,
  splitByCategory,
  testSizeFor,
  type SplitOptions,
  type SplitResult,
} from './split';
export { COLUMNS, JsonlError, datasetRowsToJsonl, parseDatasetRows, parseJsonl, toJsonl } from './jsonl';
export {
  DATASET_FILES,
  MANIFEST_SCHEMA_ID,
  datasetContentHash,
  datasetManifestSchema,
  datasetPrefix,
  datasetVersion,
  parseManifest,
  type DatasetManifest,
} from './manifest';
export {
  DEFAULT_GENERATOR_PARAMS,
  ArtifactAnswerStore,
  MemoryAnswerStore,
  answerScope,
  generateAnswers,
  resolveGeneratorParams,
  type AnswerStore,
  type GenerateAnswersDeps,
  type GenerateAnswersInput,
  type GenerationProgress,
  type GenerationSummary,
  type GeneratorParams,
} from './generation';
export { buildDataset, rowId, toRow, type BuildOptions, type BuildStats, type BuiltDataset } from './build';
export {
  datasetArtifact,
  readDatasetSplit,
  readManifest,
  readProvenance,
  registerDataset,
  writeDataset,
  type WriteDatasetOptions,
  type WrittenDataset,
} from './storage';
export {
  assembleDataset,
  generateDataset,
  type AssembleInput,
  type GenerateDatasetDeps,
  type GenerateDatasetInput,
  type GenerateDatasetResult,
} from './pipeline';
export {
  DatasetNotFoundError,
  diffDatasets,
  findDataset,
  formatDatasetDiff,
  formatDatasetList,
  formatDatasetShow,
  listDatasets,
  showDataset,
  type DatasetDiff,
  type DatasetListing,
} from './catalog';
