import type { Settings } from '../config';
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
  close(): Promise<void>;
}

export function createDependencies(settings: Settings, log: Logger): Dependencies {
  let warehouse: Promise<Warehouse> | undefined;
  let store: ArtifactStore | undefined;
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
    async close() {
      const opened = warehouse;
      warehouse = undefined;
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}
