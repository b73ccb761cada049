/** Plain types of the serving module (shared by activities and the workflow, which imports them as types only). */

export type ServingBackendName = 'local' | 'sagemaker';

/** The endpoints document's status. `Updating` keeps serving the previous model version (RAG reads it as serving). */
export type EndpointStatus = 'Creating' | 'Updating' | 'InService' | 'Failed' | 'RolledBack';

export interface EndpointHistoryEntry {
  at: string;
  /** deploy | rollback (after a failed smoke test, or `twin deploy rollback`) */
  action: 'deploy' | 'rollback';
  modelVersion: string;
  /** in-service | failed: <reason> | rolled-back: <reason> | started */
  outcome: string;
  workflowId?: string;
}

/** A local model server (jobs/serve/server.py) as the endpoints document and the activities know it. */
export interface LocalServerRef {
  modelVersion: string;
  pid: number;
  port: number;
  /** OpenAI-compatible base URL including /v1. */
  url: string;
  /** The server's folder: server.json (pid, port), server.log. */
  dir: string;
  /** True when an already running server of this model version was adopted. */
  reused?: boolean;
}

/** Mongo `endpoints`, `_id` = the endpoint name. The RAG library reads backend, status, url, sagemakerEndpointName, modelVersion. */
export interface EndpointRecord {
  _id: string;
  backend: ServingBackendName;
  status: EndpointStatus;
  /** The model version that serves now (during Updating: still the previous one). */
  modelVersion: string;
  url?: string;
  sagemakerEndpointName?: string;
  endpointConfigName?: string;
  previousEndpointConfigName?: string;
  previousModelVersion?: string;
  /** During Creating/Updating: the version being deployed. */
  targetModelVersion?: string;
  /** Local backend: the server that serves now, and the one it replaced (stopped, restartable by a rollback). */
  localServer?: LocalServerRef;
  updatedAt: string;
  history: EndpointHistoryEntry[];
}

/** What prepareDeployment resolved: everything the later activities need, small and deterministic. */
export interface DeploymentPlan {
  workflowId: string;
  endpointName: string;
  backend: ServingBackendName;
  /** deploy = a new version; rollback = back to the endpoint's previous version. */
  kind: 'deploy' | 'rollback';
  modelVersion: string;
  /** The model's artifact: `s3://…/model.tar.gz` or `file://…/model`. */
  artifactUri: string;
  modelPackageArn?: string;
  /** What serves before this deployment (absent for the first one). */
  previousModelVersion?: string;
  sagemaker?: {
    endpointName: string;
    modelName: string;
    endpointConfigName: string;
    /** The endpoint's config before this deployment (rollback target after a failed smoke test). */
    previousEndpointConfigName?: string;
    container: 'tgi' | 'lmi';
  };
  local?: {
    /** The server that serves now, stopped only after the new one passed its smoke test. */
    previousServer?: LocalServerRef;
  };
}

export interface SmokeTestResult {
  ok: boolean;
  latencyMs: number;
  sample?: string;
  error?: string;
}

/** What the SageMaker endpoint did after a create/update. */
export interface EndpointApplyResult {
  action: 'create' | 'update' | 'adopt';
  /** The config the endpoint ran before (AWS's word, else the endpoints document's). */
  previousEndpointConfigName?: string;
}

/** What to deploy: an Approved model version of the registry (src/training/registry.ts). */
export interface DeployModelInput {
  /** Model version in the registry. */
  model: string;
  /** Default: the SERVING_BACKEND setting. */
  backend?: 'local' | 'sagemaker';
  /** Default: SERVING_ENDPOINT_NAME ('llm-twin'). */
  endpointName?: string;
}

export interface DeploymentResult {
  endpointName: string;
  backend: 'local' | 'sagemaker';
  modelVersion: string;
  status: 'InService';
  /** Local: the OpenAI-compatible base URL including /v1. */
  url?: string;
  previousModelVersion?: string;
  smokeTest: { ok: boolean; latencyMs: number; sample?: string };
}

/** `twin deploy rollback`: back to the endpoint's previous model version. */
export interface RollbackDeploymentInput {
  /** Default: SERVING_ENDPOINT_NAME. */
  endpointName?: string;
}
