import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes every pipeline sets, so runs can be filtered in the Web UI
 * (e.g. `TwinPipeline = "featureEngineering" AND TwinAuthor = "Paul Iusztin"`).
 */
export const SEARCH_ATTRIBUTES = {
  pipeline: defineSearchAttributeKey('TwinPipeline', SearchAttributeType.KEYWORD),
  author: defineSearchAttributeKey('TwinAuthor', SearchAttributeType.KEYWORD_LIST),
  datasetVersion: defineSearchAttributeKey('TwinDatasetVersion', SearchAttributeType.KEYWORD),
  modelVersion: defineSearchAttributeKey('TwinModelVersion', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('TwinStatus', SearchAttributeType.KEYWORD),
} as const;

/** Name → type, in the words the `temporal` CLI and the operator service use. */
export const SEARCH_ATTRIBUTE_DEFINITIONS: Record<string, 'Keyword' | 'KeywordList'> = {
  TwinPipeline: 'Keyword',
  TwinAuthor: 'KeywordList',
  TwinDatasetVersion: 'Keyword',
  TwinModelVersion: 'Keyword',
  TwinStatus: 'Keyword',
};
