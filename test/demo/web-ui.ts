/**
 * Checks of an endToEnd run in the Temporal Web UI (2.42, the one `temporal server start-dev` serves), driven in
 * Debian's Chromium through playwright-core: find the run by its search attribute, open it, see its child
 * workflows (Relationships), each stage's artifacts (the `progress` query run from the Queries tab) and its result;
 * and start a workflow from the UI's "Start Workflow" form.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';

export interface UiRun {
  uiUrl: string;
  namespace: string;
  workflowId: string;
  runId: string;
}

const TIMEOUT = 30_000;

export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The workflow list filtered by `TwinPipeline="endToEnd"`: the run's row is there. Returns the page's text. */
export async function findBySearchAttribute(page: Page, run: UiRun): Promise<string> {
  const query = encodeURIComponent('TwinPipeline="endToEnd"');
  await page.goto(`${run.uiUrl}/namespaces/${run.namespace}/workflows?query=${query}`);
  await page.getByRole('link', { name: run.workflowId }).first().waitFor({ timeout: TIMEOUT });
  return page.locator('body').innerText();
}

/** Opens the run from the list (a click, as a user would) and waits for its history page. */
export async function openRun(page: Page, run: UiRun): Promise<string> {
  await page.getByRole('link', { name: run.workflowId }).first().click();
  await page.waitForURL(/\/history/, { timeout: TIMEOUT });
  await page.getByText('Event History').first().waitFor({ timeout: TIMEOUT });
  await page.getByText('Completed').first().waitFor({ timeout: TIMEOUT });
  return page.locator('body').innerText();
}

/** The Relationships tab: the child workflows with their ids and statuses. */
export async function relationships(page: Page, run: UiRun, expectedChildren: string[]): Promise<string> {
  await page.goto(
    `${run.uiUrl}/namespaces/${run.namespace}/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}/relationships`,
  );
  for (const child of expectedChildren) await page.getByText(child).first().waitFor({ timeout: TIMEOUT });
  return page.locator('body').innerText();
}

/** The Queries tab: runs the `progress` query and returns the text of its answer. */
export async function progressQuery(page: Page, run: UiRun, expected: string): Promise<string> {
  await page.goto(
    `${run.uiUrl}/namespaces/${run.namespace}/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}/query`,
  );
  // the Query Type menu is filled once the UI has asked the worker for the queries (`progress` is the first)
  const runButton = page.getByRole('button', { name: 'Run Query' });
  await runButton.waitFor({ timeout: TIMEOUT });
  await page.waitForTimeout(2000);
  await runButton.click();
  await page.getByText(expected).first().waitFor({ timeout: TIMEOUT });
  return page.locator('body').innerText();
}

/**
 * Starts a workflow from the "Start Workflow" form (workflow id, task queue and type through the form's own URL
 * parameters, the JSON input typed into its editor), clicks "Start Workflow" and returns the HTTP status of the
 * UI's start request (the UI 2.42 form stays on its page afterwards).
 */
export async function startFromUi(
  page: Page,
  ui: { uiUrl: string; namespace: string },
  start: { workflowId: string; taskQueue: string; workflowType: string; input: unknown },
): Promise<number> {
  await page.goto(`${ui.uiUrl}/namespaces/${ui.namespace}/workflows`);
  await page.getByRole('button', { name: 'Start Workflow' }).first().click();
  await page.waitForURL(/start-workflow/, { timeout: TIMEOUT });
  await page.locator('#workflowId').fill(start.workflowId);
  await page.locator('#taskQueue').fill(start.taskQueue);
  await page.locator('#workflowType').fill(start.workflowType);
  const editor = page.locator('.cm-content[contenteditable="true"]').first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(JSON.stringify(start.input));
  // leaving the editor reformats the JSON (the form grows and the button moves): blur it first, then let the form
  // finish its task-queue check before clicking
  await page.locator('#workflowType').click();
  await page.getByText('Task Queue is Active').first().waitFor({ timeout: TIMEOUT });
  await page.waitForTimeout(1000);
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) =>
        r.request().method() === 'POST' &&
        new URL(r.url()).pathname.endsWith(`/workflows/${encodeURIComponent(start.workflowId)}`),
      { timeout: TIMEOUT },
    ),
    page.getByRole('button', { name: 'Start Workflow' }).last().click(),
  ]);
  return response.status();
}
