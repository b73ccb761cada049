import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { getFreePort } from '../../src/infra/local-services';
import { launchChromium } from '../support/browser';
import { isolatedEnv, runTwin, startTwin } from '../support/cli';
import { testEnv } from '../support/env';

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('twin dev: the local platform in one command', () => {
  let dev: ChildProcess | undefined;
  after(async () => {
    if (!dev || dev.exitCode !== null) return;
    const exited = new Promise((resolve) => dev!.once('exit', resolve));
    dev.kill('SIGINT');
    const forced = setTimeout(() => dev?.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(forced);
  });

  test('starts every service and worker, runs the smoke workflow, shows it in the Web UI, stops cleanly', async () => {
    const dataDir = path.join(testEnv.tmpDir, 'dev-platform');
    const uiPort = await getFreePort();
    const env = isolatedEnv({
      TWIN_DATA_DIR: dataDir,
      TEMPORAL_PORT: String(await getFreePort()),
      TEMPORAL_UI_PORT: String(uiPort),
    });
    const started = await startTwin(['dev'], env, /Ctrl-C stops everything/);
    dev = started.child;
    assert.match(started.output(), new RegExp(`Temporal Web UI\\s+http://127\\.0\\.0\\.1:${uiPort}`));

    // A second terminal: the same data dir, no URLs; `twin` finds the running platform.
    const doctor = await runTwin(['doctor'], env);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /✔ Workers\s+every queue answers/);
    const smoke = await runTwin(['smoke', '--message', 'seen in the browser'], env);
    assert.equal(smoke.code, 0, smoke.stdout + smoke.stderr);
    const workflowId = /started (smoke-\S+)/.exec(smoke.stdout)?.[1];
    assert.ok(workflowId, smoke.stdout);
    assert.match(smoke.stdout, /"kind": "smoke-note"/);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${uiPort}/namespaces/default/workflows`);
      await page.getByText(workflowId).first().waitFor({ timeout: 30_000 });
      const screenshots = path.join(testEnv.tmpDir, 'screenshots');
      await mkdir(screenshots, { recursive: true });
      await page.screenshot({ path: path.join(screenshots, 'dev-workflows.png'), fullPage: true });
      await page.getByRole('link', { name: workflowId }).first().click();
      await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
    } finally {
      await browser.close();
    }

    const state = JSON.parse(await readFile(path.join(dataDir, 'platform.json'), 'utf8')) as {
      pid: number;
      processes: { name: string; pid: number }[];
    };
    assert.equal(state.pid, dev.pid);
    assert.deepEqual(state.processes.map((p) => p.name).sort(), ['ferretdb', 'qdrant-standin', 'temporal', 'workers']);
    const exited = new Promise<number | null>((resolve) => dev!.once('exit', (code) => resolve(code)));
    dev.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(existsSync(path.join(dataDir, 'platform.json')), false, 'state file removed on stop');
    assert.ok(existsSync(path.join(dataDir, 'temporal')), 'dev server data kept for the next start');
    for (const { name, pid } of state.processes) assert.equal(isAlive(pid), false, `${name} (pid ${pid}) stopped`);
    dev = undefined;
  });
});
