import type { Collection, Db } from 'mongodb';
import type { EndpointHistoryEntry, EndpointRecord, LocalServerRef, ServingBackendName } from './types';

export const ENDPOINTS_COLLECTION = 'endpoints';
/** History entries kept per endpoint (newest last). */
const HISTORY_LIMIT = 50;

/**
 * The Mongo `endpoints` collection: which model version serves under an endpoint name, where (local URL or
 * SageMaker endpoint), and what happened to it. The RAG library reads it to find its generator.
 */
export class EndpointStore {
  private readonly collection: Collection<EndpointRecord>;

  constructor(db: Db) {
    this.collection = db.collection<EndpointRecord>(ENDPOINTS_COLLECTION);
  }

  get(name: string): Promise<EndpointRecord | null> {
    return this.collection.findOne({ _id: name });
  }

  list(): Promise<EndpointRecord[]> {
    return this.collection.find({}).sort({ _id: 1 }).toArray();
  }

  /**
   * A deployment started: a new endpoint is `Creating`; an existing one is `Updating` and keeps its serving fields
   * (modelVersion, url) until the new version passed. Idempotent: a retried call adds no second history entry.
   */
  async begin(input: {
    name: string;
    backend: ServingBackendName;
    modelVersion: string;
    kind: 'deploy' | 'rollback';
    workflowId: string;
    now?: Date;
  }): Promise<void> {
    const at = (input.now ?? new Date()).toISOString();
    const existing = await this.get(input.name);
    const entry: EndpointHistoryEntry = {
      at,
      action: input.kind,
      modelVersion: input.modelVersion,
      outcome: 'started',
      workflowId: input.workflowId,
    };
    const already = existing?.history.some((h) => h.workflowId === input.workflowId && h.outcome === 'started');
    if (!existing) {
      try {
        await this.collection.insertOne({
          _id: input.name,
          backend: input.backend,
          status: 'Creating',
          modelVersion: input.modelVersion,
          targetModelVersion: input.modelVersion,
          updatedAt: at,
          history: [entry],
        });
        return;
      } catch (error) {
        if ((error as { code?: number }).code !== 11000) throw error;
        return this.begin(input); // created concurrently: treat as existing
      }
    }
    const serving =
      existing.status === 'InService' || existing.status === 'Updating' || existing.status === 'RolledBack';
    await this.collection.updateOne(
      { _id: input.name },
      {
        $set: {
          status: serving ? 'Updating' : 'Creating',
          targetModelVersion: input.modelVersion,
          updatedAt: at,
          ...(serving ? {} : { backend: input.backend, modelVersion: input.modelVersion }),
        },
        ...(already ? {} : { $push: { history: { $each: [entry], $slice: -HISTORY_LIMIT } } }),
      },
    );
  }

  /** The new version serves: the switch readers see. */
  async inService(input: {
    name: string;
    backend: ServingBackendName;
    modelVersion: string;
    kind: 'deploy' | 'rollback';
    workflowId: string;
    url?: string;
    sagemakerEndpointName?: string;
    endpointConfigName?: string;
    previousEndpointConfigName?: string;
    previousModelVersion?: string;
    localServer?: LocalServerRef;
    now?: Date;
  }): Promise<EndpointRecord> {
    const at = (input.now ?? new Date()).toISOString();
    const set: Partial<EndpointRecord> = {
      backend: input.backend,
      status: 'InService',
      modelVersion: input.modelVersion,
      updatedAt: at,
    };
    const unset: Record<string, ''> = { targetModelVersion: '' };
    const optional = {
      url: input.url,
      sagemakerEndpointName: input.sagemakerEndpointName,
      endpointConfigName: input.endpointConfigName,
      previousEndpointConfigName: input.previousEndpointConfigName,
      previousModelVersion: input.previousModelVersion,
      localServer: input.localServer,
    };
    for (const [key, value] of Object.entries(optional)) {
      if (value === undefined) unset[key] = '';
      else (set as Record<string, unknown>)[key] = value;
    }
    await this.collection.updateOne(
      { _id: input.name },
      {
        $set: set,
        $unset: unset,
        $push: {
          history: {
            $each: [
              {
                at,
                action: input.kind,
                modelVersion: input.modelVersion,
                outcome: 'in-service',
                workflowId: input.workflowId,
              },
            ],
            $slice: -HISTORY_LIMIT,
          },
        },
      },
      { upsert: true },
    );
    const stored = await this.get(input.name);
    if (!stored) throw new Error(`endpoint ${input.name} vanished right after it was recorded`);
    return stored;
  }

  /**
   * The deployment failed. `stillServing` = the previous version serves again (never replaced, or rolled back):
   * the document keeps (or gets back) `InService` with that version, so readers go on using it; otherwise `Failed`.
   */
  async failed(input: {
    name: string;
    modelVersion: string;
    kind: 'deploy' | 'rollback';
    workflowId: string;
    reason: string;
    stillServing: boolean;
    rolledBack: boolean;
    now?: Date;
  }): Promise<void> {
    const at = (input.now ?? new Date()).toISOString();
    const reason = input.reason.length > 500 ? `${input.reason.slice(0, 499)}…` : input.reason;
    await this.collection.updateOne(
      { _id: input.name },
      {
        $set: { status: input.stillServing ? 'InService' : 'Failed', updatedAt: at },
        $unset: { targetModelVersion: '' },
        $push: {
          history: {
            $each: [
              {
                at,
                action: input.kind,
                modelVersion: input.modelVersion,
                outcome: `${input.rolledBack ? 'rolled-back' : 'failed'}: ${reason}`,
                workflowId: input.workflowId,
              },
            ],
            $slice: -HISTORY_LIMIT,
          },
        },
      },
    );
  }
}

export const ENDPOINT_LEASES_COLLECTION = 'endpoint_leases';

interface EndpointLease {
  _id: string;
  workflowId: string;
  since: string;
}

export type LeaseClaim = { claimed: true } | { claimed: false; holder: string; since: string };

/**
 * One deployment workflow at a time per endpoint: deployModel and rollbackDeployment claim the endpoint's lease
 * before they plan and release it when they end. Keyed by workflow id, so a retried activity re-claims its own.
 */
export class EndpointLeases {
  private readonly collection: Collection<EndpointLease>;

  constructor(db: Db) {
    this.collection = db.collection<EndpointLease>(ENDPOINT_LEASES_COLLECTION);
  }

  async claim(name: string, workflowId: string, now = new Date()): Promise<LeaseClaim> {
    try {
      await this.collection.insertOne({ _id: name, workflowId, since: now.toISOString() });
      return { claimed: true };
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
    }
    const lease = await this.collection.findOne({ _id: name });
    if (!lease) return this.claim(name, workflowId, now); // released in between
    if (lease.workflowId === workflowId) return { claimed: true };
    return { claimed: false, holder: lease.workflowId, since: lease.since };
  }

  /** Takes the lease from a holder that has ended without releasing it (terminated, timed out). */
  async takeOver(name: string, from: string, workflowId: string, now = new Date()): Promise<boolean> {
    const result = await this.collection.updateOne(
      { _id: name, workflowId: from },
      { $set: { workflowId, since: now.toISOString() } },
    );
    return result.matchedCount === 1;
  }

  async release(name: string, workflowId: string): Promise<void> {
    await this.collection.deleteOne({ _id: name, workflowId });
  }

  holder(name: string): Promise<EndpointLease | null> {
    return this.collection.findOne({ _id: name });
  }
}
