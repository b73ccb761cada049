import type { Collection, Db } from 'mongodb';
import { artifactId, type ArtifactKind, type ArtifactRef, type NewArtifact } from '../domain/artifacts';

interface ArtifactDocument extends Omit<ArtifactRef, 'id'> {
  _id: string;
  /** Every run that produced (or re-produced) this artifact, first one first. */
  seenIn: { workflowId: string; runId: string; at: string }[];
}

/** The Mongo `artifacts` collection: what every step made, and from what. */
export class ArtifactRegistry {
  private readonly collection: Collection<ArtifactDocument>;

  constructor(db: Db) {
    this.collection = db.collection<ArtifactDocument>('artifacts');
  }

  /**
   * Records an artifact idempotently: the id is derived from kind + checksum, so a retried activity or a
   * re-run that produced the same content finds the existing record and only notes that it saw it again.
   */
  async record(artifact: NewArtifact, now: Date = new Date()): Promise<ArtifactRef> {
    const id = artifactId(artifact.kind, artifact.checksum);
    const createdAt = now.toISOString();
    const { producer } = artifact;
    const sighting = { workflowId: producer.workflowId, runId: producer.runId, at: createdAt };
    // Insert, and on a duplicate id only note the sighting. (Not an upsert with $setOnInsert: FerretDB 1.x
    // drops empty arrays from $setOnInsert, which would lose `inputs: []`.)
    try {
      await this.collection.insertOne({ _id: id, ...artifact, createdAt, seenIn: [sighting] });
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      await this.collection.updateOne({ _id: id }, { $addToSet: { seenIn: sighting } });
    }
    const stored = await this.collection.findOne({ _id: id });
    if (!stored) throw new Error(`artifact ${id} vanished right after it was recorded`);
    return toRef(stored);
  }

  async get(id: string): Promise<ArtifactRef | null> {
    const found = await this.collection.findOne({ _id: id });
    return found ? toRef(found) : null;
  }

  async list(filter: { kind?: ArtifactKind; limit?: number } = {}): Promise<ArtifactRef[]> {
    const docs = await this.collection
      .find(filter.kind ? { kind: filter.kind } : {})
      .sort({ createdAt: -1 })
      .limit(filter.limit ?? 50)
      .toArray();
    return docs.map(toRef);
  }

  /** The artifact and everything it was made from, depth-first, each once. */
  async lineage(id: string): Promise<{ artifact: ArtifactRef; depth: number }[]> {
    const seen = new Set<string>();
    const result: { artifact: ArtifactRef; depth: number }[] = [];
    const visit = async (current: string, depth: number): Promise<void> => {
      if (seen.has(current)) return;
      seen.add(current);
      const artifact = await this.get(current);
      if (!artifact) return;
      result.push({ artifact, depth });
      for (const input of artifact.inputs) await visit(input, depth + 1);
    };
    await visit(id, 0);
    return result;
  }
}

function toRef(doc: ArtifactDocument): ArtifactRef {
  const { _id, seenIn: _seenIn, ...rest } = doc;
  return { id: _id, ...rest };
}
