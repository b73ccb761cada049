import os from 'node:os';
import { Context } from '@temporalio/activity';

/** Every activity queue serves `ping`, so `twin doctor` can check that a worker is polling each queue. */
export function createPingActivities() {
  return {
    ping(): Promise<{ taskQueue: string; host: string; pid: number }> {
      return Promise.resolve({ taskQueue: Context.current().info.taskQueue, host: os.hostname(), pid: process.pid });
    },
  };
}
