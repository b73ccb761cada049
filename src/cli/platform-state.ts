import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where `twin dev` writes the addresses of the services it started, so other `twin` commands find them. */
export function platformStateFile(dataDir: string): string {
  return path.join(dataDir, 'platform.json');
}

export interface PlatformState {
  pid: number;
  startedAt: string;
  env: Record<string, string>;
  webUi?: string;
  /** Processes `twin dev` started, for diagnosis. */
  processes: { name: string; pid: number }[];
}

export async function writePlatformState(dataDir: string, state: PlatformState): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  await writeFile(platformStateFile(dataDir), JSON.stringify(state, null, 2));
}

export async function clearPlatformState(dataDir: string): Promise<void> {
  await rm(platformStateFile(dataDir), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fills unset service variables from a running `twin dev`, so `twin smoke` in a second terminal talks to
 * the same platform. Explicit environment variables always win.
 */
export function adoptRunningPlatform(dataDir: string, env: NodeJS.ProcessEnv = process.env): PlatformState | undefined {
  let state: PlatformState;
  try {
    state = JSON.parse(readFileSync(platformStateFile(dataDir), 'utf8')) as PlatformState;
  } catch {
    return undefined;
  }
  if (!isAlive(state.pid)) return undefined;
  for (const [name, value] of Object.entries(state.env)) {
    if (!env[name]) env[name] = value;
  }
  return state;
}
