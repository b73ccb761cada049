import type { Settings } from '../config';
import { Fetcher } from '../etl/fetcher';
import { ArtifactRegistry } from './artifact-registry';
import { createArtifactStore, type ArtifactStore } from './artifact-store';
import type { Logger } from './logger';
import { openWarehouse, type Warehouse } from './mongo';

/**
 * What activities need from the outside world, opened lazily once per worker process and closed on
 * shutdown. Activities receive this object; tests build one against the real test services.
 */
export interface Dependencies {
  settings: Settings;
  log: Logger;
  warehouse(): Promise<Warehouse>;
  artifactRegistry(): Promise<ArtifactRegistry>;
  artifactStore(): ArtifactStore;
  /** The crawler's HTTP fetcher: one per process (connection pool, per-host politeness, robots cache). */
  fetcher(): Fetcher;
  close(): Promise<void>;
}

export function createDependencies(settings: Settings, log: Logger): Dependencies {
  let warehouse: Promise<Warehouse> | undefined;
  let store: ArtifactStore | undefined;
  let fetcher: Fetcher | undefined;
  const openOnce = (): Promise<Warehouse> => {
    // A failed open is not cached: the next activity attempt tries again.
    warehouse ??= openWarehouse(settings.mongo).catch((error: unknown) => {
      warehouse = undefined;
      throw error;
    });
    return warehouse;
  };
  return {
    settings,
    log,
    warehouse: openOnce,
    artifactRegistry: async () => new ArtifactRegistry((await openOnce()).db),
    artifactStore: () => (store ??= createArtifactStore(settings.artifacts, settings.aws)),
    fetcher: () =>
      (fetcher ??= new Fetcher({
        ssrf: { allow: settings.etl.ssrfAllow },
        robots: settings.etl.respectRobots,
        ...(settings.etl.politeness ? {} : { politeness: false as const }),
      })),
    async close() {
      const openFetcher = fetcher;
      fetcher = undefined;
      await openFetcher?.close().catch(() => undefined);
      const opened = warehouse;
      warehouse = undefined;
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}
