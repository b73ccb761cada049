/** The RAG library: retrieval, generation and prompt monitoring behind the {@link RagEngine} contract. */
export * from './types';
export { createRagService, RagService, MAX_K, MAX_QUERY_CHARS, type RagServiceOptions } from './service';
export {
  createGenerator,
  EndpointGenerator,
  ENDPOINTS_COLLECTION,
  GeneratorError,
  OpenAiGenerator,
  SageMakerGenerator,
  type EndpointRecord,
  type Generation,
  type Generator,
  type GenerateOptions,
} from './generator';
export { CrossEncoderReranker, rerankerInstalled, type Reranker } from './reranker';
export { RAG_PROMPT_VERSION, RAG_SYSTEM_PROMPT, buildMessages } from './prompt';
export {
  EVAL_SAMPLES_COLLECTION,
  SPAN_NAMES,
  TRACES_COLLECTION,
  TraceStore,
  type EvalSample,
  type SpanName,
  type TraceRecord,
  type TraceSink,
  type TraceSpan,
} from './tracing';
export { OpikTraceSink, opikConfigured } from './opik';
