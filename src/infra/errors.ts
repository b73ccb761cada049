/** A dependency (database, vector store, Temporal, model server) that cannot be reached. */
export class ServiceUnavailableError extends Error {
  constructor(
    readonly service: string,
    detail: string,
  ) {
    super(`${service} unavailable: ${detail}`);
    this.name = 'ServiceUnavailableError';
  }
}
