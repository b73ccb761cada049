import { Command, Option } from 'commander';
import { ARTIFACT_KINDS, type ArtifactKind } from '../domain/artifacts';
import { ConfigError, parseSettings, settings as loadSettings, type Settings } from '../config';
import { ArtifactRegistry } from '../infra/artifact-registry';
import { ServiceUnavailableError } from '../infra/errors';
import { MissingBinaryError } from '../infra/local-services';
import { openWarehouse } from '../infra/mongo';
import { connectClient } from '../infra/temporal';
import { startDevPlatform } from './dev';
import { formatChecks, runDoctor } from './doctor';
import { registerDatasetCommands } from './datasets-commands';
import { registerDeployCommands } from './deploy-commands';
import { registerDemoCommands } from './demo-commands';
import { registerFeatureCommands } from './features-commands';
import { registerApiCommands } from './api-commands';
import { registerEtlCommands } from './etl-commands';
import { registerEvaluationCommands } from './evaluation-commands';
import { registerModelsCommands } from './models-commands';
import { adoptRunningPlatform } from './platform-state';
import { registerPipelineCommands } from './pipeline-commands';
import { registerScheduleCommands } from './schedule-commands';
import { registerTracesCommands } from './traces-commands';

const print = (line: string) => process.stdout.write(`${line}\n`);

/** Settings for commands that talk to a running platform: unset URLs are taken from a running `twin dev`. */
function platformSettings(): Settings {
  const base = loadSettings();
  return adoptRunningPlatform(base.dataDir) ? parseSettings(process.env) : base;
}

function webUiLink(settings: Settings, workflowId: string, runId: string): string | undefined {
  if (settings.temporal.address && !settings.temporal.address.startsWith('127.0.0.1')) return undefined;
  return `http://127.0.0.1:${settings.temporal.uiPort}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

const program = new Command()
  .name('twin')
  .description('LLM Twin on Temporal: run and inspect the pipelines that build an LLM twin.')
  .showHelpAfterError();

program
  .command('dev')
  .description('start the local platform: Temporal dev server + Web UI, MongoDB-protocol server, Qdrant, all workers')
  .action(async () => {
    const settings = loadSettings();
    const started = Date.now();
    const platform = await startDevPlatform(settings, print);
    print('');
    print(`LLM Twin local platform is up (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    if (platform.webUi) print(`  Temporal Web UI   ${platform.webUi}`);
    print(
      `  Temporal          ${platform.env.TEMPORAL_ADDRESS ?? settings.temporal.address} (namespace ${settings.temporal.namespace})`,
    );
    print(`  MongoDB           ${platform.env.MONGODB_URI ?? '(MONGODB_URI)'}`);
    print(`  Qdrant            ${platform.env.QDRANT_URL ?? settings.qdrant.url}`);
    print(`  Artifacts         ${settings.artifacts.dir}`);
    print(`  Data              ${settings.dataDir}`);
    print('Try `npx twin smoke` in another terminal. Ctrl-C stops everything.');
    let stopping = false;
    const shutdown = () => {
      if (stopping) return;
      stopping = true;
      print('\nstopping …');
      platform.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
    platform.workers.once('exit', (code) => {
      if (stopping) return;
      print(`workers exited (code ${code}); stopping the platform`);
      process.exitCode = 1;
      shutdown();
    });
  });

program
  .command('doctor')
  .description('check configuration and every service, and say what to fix')
  .action(async () => {
    const checks = await runDoctor(platformSettings());
    print(formatChecks(checks));
    if (checks.some((c) => !c.ok)) process.exitCode = 1;
  });

program
  .command('smoke')
  .description('run the smoke workflow across every layer and print its artifact')
  .option('-m, --message <text>', 'note to write', 'hello from twin smoke')
  .action(async (options: { message: string }) => {
    const settings = platformSettings();
    const client = await connectClient(settings.temporal);
    try {
      const workflowId = `smoke-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      const handle = await client.workflow.start('smoke', {
        taskQueue: 'twin-pipelines',
        workflowId,
        args: [{ message: options.message }],
      });
      print(`started ${workflowId}`);
      const link = webUiLink(settings, workflowId, handle.firstExecutionRunId);
      if (link) print(`Web UI: ${link}`);
      const result: unknown = await handle.result();
      print(JSON.stringify(result, null, 2));
    } finally {
      await client.connection.close();
    }
  });

program
  .command('artifacts')
  .description('list recorded artifacts, newest first')
  .addOption(new Option('-k, --kind <kind>', 'only this kind').choices(ARTIFACT_KINDS))
  .option('-n, --limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
  .action(async (options: { kind?: ArtifactKind; limit: number }) => {
    const warehouse = await openWarehouse(platformSettings().mongo);
    try {
      const artifacts = await new ArtifactRegistry(warehouse.db).list(options);
      if (artifacts.length === 0) print('no artifacts yet');
      for (const a of artifacts) {
        print(
          `${a.createdAt}  ${a.id.padEnd(40)} count=${a.count}  ${a.uri}  ← ${a.producer.workflowId}/${a.producer.activity}#${a.producer.attempt}`,
        );
      }
    } finally {
      await warehouse.close();
    }
  });

program
  .command('lineage <artifactId>')
  .description('show an artifact and everything it was made from')
  .action(async (artifactId: string) => {
    const warehouse = await openWarehouse(platformSettings().mongo);
    try {
      const graph = await new ArtifactRegistry(warehouse.db).lineage(artifactId);
      if (graph.length === 0) {
        print(`no artifact ${artifactId}; list them with \`twin artifacts\``);
        process.exitCode = 1;
      }
      for (const { artifact, depth } of graph) {
        print(
          `${'  '.repeat(depth)}${depth ? '← ' : ''}${artifact.id} (${artifact.kind}, ${artifact.count}) ${artifact.uri}`,
        );
      }
    } finally {
      await warehouse.close();
    }
  });

registerModelsCommands(program, platformSettings);
registerFeatureCommands(program, { platformSettings, webUiLink, print });
registerDatasetCommands(program, { platformSettings, webUiLink, print });

registerEtlCommands(program, { platformSettings, webUiLink, print });
// @cli:register (one line per command group)
registerTracesCommands(program, platformSettings);
registerDemoCommands(program, { print });
registerEvaluationCommands(program, { platformSettings, webUiLink, print });
registerDeployCommands(program, { platformSettings, webUiLink, print });
registerApiCommands(program, { platformSettings, webUiLink, print });
registerScheduleCommands(program, { platformSettings, webUiLink, print });
registerPipelineCommands(program, { platformSettings, webUiLink, print });

function explain(error: unknown): string {
  if (error instanceof Error && error.name === 'ServiceError') {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `Temporal: ${error.message}${cause}. Is the platform running (\`npm run dev\`, \`npx twin doctor\`)?`;
  }
  if (error instanceof ConfigError || error instanceof ServiceUnavailableError || error instanceof MissingBinaryError) {
    return error.message;
  }
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`twin: ${explain(error)}\n`);
  process.exit(1);
});
