import { Option, type Command } from 'commander';
import type { Settings } from '../config';
import { ArtifactRegistry } from '../infra/artifact-registry';
import { openWarehouse } from '../infra/mongo';
import { ModelRegistry, type ModelVersion } from '../training/registry';
import { TRAINING_MODES, type TrainingMode } from '../training/spec';

const print = (line: string) => process.stdout.write(`${line}\n`);

function formatMetric(value: number | undefined): string {
  return value === undefined ? '-' : Number(value.toPrecision(4)).toString();
}

export function formatModelLine(model: ModelVersion): string {
  const loss = formatMetric(model.metrics.train_loss);
  const base = model.baseModelVersion ?? model.baseModel;
  return `${model.createdAt}  ${model.version.padEnd(52)} ${model.mode}  ${model.backend.padEnd(9)} ${model.status.padEnd(21)} train_loss=${loss}  dataset=${model.datasetVersion}  base=${base}`;
}

/** `twin models list | show <version>`: the model registry (Mongo `models`) and each version's lineage. */
export function registerModelsCommands(program: Command, platformSettings: () => Settings): void {
  const models = program.command('models').description('trained model versions (the model registry)');

  models
    .command('list')
    .description('list model versions, newest first')
    .addOption(new Option('-m, --mode <mode>', 'only sft or dpo').choices(TRAINING_MODES))
    .option('-n, --limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
    .action(async (options: { mode?: TrainingMode; limit: number }) => {
      const warehouse = await openWarehouse(platformSettings().mongo);
      try {
        const list = await new ModelRegistry(warehouse.db).list(options);
        if (list.length === 0) print('no model versions yet; train one with the trainModel workflow');
        for (const model of list) print(formatModelLine(model));
      } finally {
        await warehouse.close();
      }
    });

  models
    .command('show <version>')
    .description('show a model version: hyperparameters, metrics, artifact, and its lineage back to the raw documents')
    .action(async (version: string) => {
      const warehouse = await openWarehouse(platformSettings().mongo);
      try {
        const model = await new ModelRegistry(warehouse.db).get(version);
        if (!model) {
          print(`no model version ${version}; list them with \`twin models list\``);
          process.exitCode = 1;
          return;
        }
        print(`model version  ${model.version}`);
        print(`  mode         ${model.mode}`);
        print(`  status       ${model.status}`);
        print(`  created      ${model.createdAt} by workflow ${model.workflowId}`);
        print(`  backend      ${model.backend} (job ${model.jobName}${model.jobArn ? `, ${model.jobArn}` : ''})`);
        print(
          `  base model   ${model.baseModel}${model.baseModelVersion ? ` (model version ${model.baseModelVersion})` : ''}`,
        );
        print(`  dataset      ${model.datasetArtifactId} (version ${model.datasetVersion})`);
        print(`  artifact     ${model.artifactUri}`);
        if (model.modelPackageArn) print(`  package      ${model.modelPackageArn}`);
        print(`  template     ${model.chatTemplateChecksum}`);
        print('  hyperparameters');
        for (const [name, value] of Object.entries(model.hyperparameters).sort(([a], [b]) => a.localeCompare(b))) {
          print(`    ${name.padEnd(28)} ${String(value)}`);
        }
        print('  metrics');
        for (const [name, value] of Object.entries(model.metrics).sort(([a], [b]) => a.localeCompare(b))) {
          print(`    ${name.padEnd(28)} ${formatMetric(value)}`);
        }
        print('  lineage');
        for (const { artifact, depth } of await new ArtifactRegistry(warehouse.db).lineage(model.artifactId)) {
          print(
            `    ${'  '.repeat(depth)}${depth ? '← ' : ''}${artifact.id} (${artifact.kind}, ${artifact.count}) ${artifact.uri}`,
          );
        }
      } finally {
        await warehouse.close();
      }
    });
}
