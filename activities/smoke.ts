import type { ArtifactRef } from '../src/domain/artifacts';
import { checksumOf } from '../src/domain/artifacts';
import type { Dependencies } from '../src/infra/dependencies';
import { badInput, currentProducer, heartbeatingWait } from './support';

export interface SmokeNoteInput {
  message: string;
  /** How long to hold (heartbeating) after the write; the crash test kills the worker during it. */
  holdMs?: number;
}

interface SmokeNoteDocument {
  _id: string;
  message: string;
  workflowId: string;
  attempts: number[];
  writtenAt: Date;
}

/**
 * The smoke activity: one idempotent MongoDB write keyed by the workflow, then an ArtifactRef. A retry after a
 * crash finds the same document and only notes its attempt number.
 */
export function createSmokeActivities(deps: Dependencies) {
  return {
    async writeSmokeNote(input: SmokeNoteInput): Promise<ArtifactRef> {
      if (!input.message.trim()) throw badInput('smoke message must not be empty');
      const producer = currentProducer();
      const { db } = await deps.warehouse();
      const notes = db.collection<SmokeNoteDocument>('smoke_notes');
      const id = `smoke:${producer.workflowId}`;
      await notes.updateOne(
        { _id: id },
        {
          $setOnInsert: { message: input.message, workflowId: producer.workflowId, writtenAt: new Date() },
          $addToSet: { attempts: producer.attempt },
        },
        { upsert: true },
      );
      if (input.holdMs) await heartbeatingWait(input.holdMs, { written: id });
      const registry = await deps.artifactRegistry();
      return registry.record({
        kind: 'smoke-note',
        uri: `mongodb:///${db.databaseName}/smoke_notes/${encodeURIComponent(id)}`,
        count: 1,
        checksum: checksumOf({ id, message: input.message }),
        producer,
        inputs: [],
        metadata: { message: input.message },
      });
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;
