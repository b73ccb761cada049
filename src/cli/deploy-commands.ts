import { Option, type Command } from 'commander';
import { openWarehouse } from '../infra/mongo';
import { EndpointStore } from '../serving/endpoints';
import type { DeployModelInput, DeploymentResult, EndpointRecord, RollbackDeploymentInput } from '../serving/types';
import { processGroupRunning } from '../training/local';
import { slug, startPipeline, withRunOptions, type CliContext, type RunOptions } from './context';

export function formatDeployment(result: DeploymentResult): string[] {
  return [
    `${result.endpointName}: ${result.modelVersion} ${result.status} (${result.backend})${result.previousModelVersion ? `, replaced ${result.previousModelVersion}` : ''}`,
    ...(result.url ? [`  url          ${result.url}`] : []),
    `  smoke test   ${result.smokeTest.ok ? 'ok' : 'FAILED'} in ${result.smokeTest.latencyMs} ms${result.smokeTest.sample !== undefined ? `: ${JSON.stringify(result.smokeTest.sample.slice(0, 80))}` : ''}`,
  ];
}

export function formatEndpointLine(endpoint: EndpointRecord, serverAlive?: boolean): string {
  const where =
    endpoint.backend === 'local'
      ? `${endpoint.url ?? '-'}${serverAlive === false ? ' (server not running)' : ''}`
      : `sagemaker:${endpoint.sagemakerEndpointName ?? endpoint._id} config=${endpoint.endpointConfigName ?? '-'}`;
  const target = endpoint.targetModelVersion ? ` → ${endpoint.targetModelVersion}` : '';
  const last = endpoint.history[endpoint.history.length - 1];
  return [
    endpoint._id.padEnd(20),
    endpoint.backend.padEnd(9),
    endpoint.status.padEnd(10),
    `${endpoint.modelVersion}${target}`.padEnd(52),
    where,
    `previous=${endpoint.previousModelVersion ?? '-'}`,
    `updated=${endpoint.updatedAt}`,
    ...(last && last.outcome !== 'in-service' ? [`last: ${last.action} ${last.modelVersion} ${last.outcome}`] : []),
  ].join('  ');
}

/** `twin deploy <model> | twin deploy rollback` (deployModel / rollbackDeployment workflows) and `twin endpoints`. */
export function registerDeployCommands(program: Command, ctx: CliContext): void {
  const deploy = withRunOptions(
    program
      .command('deploy')
      .description('deploy an Approved model version to an endpoint (deployModel workflow), or roll an endpoint back')
      .argument('<model>', 'model version (twin models list); only Approved versions are deployed')
      .addOption(
        new Option('-b, --backend <backend>', 'local or sagemaker (default SERVING_BACKEND)').choices([
          'local',
          'sagemaker',
        ]),
      )
      .option('-e, --endpoint <name>', 'endpoint name (default SERVING_ENDPOINT_NAME)'),
    'deploy-<endpoint>-<time>',
  ).action(
    async (
      model: string,
      options: {
        backend?: 'local' | 'sagemaker';
        endpoint?: string;
      } & RunOptions,
    ) => {
      const endpoint = options.endpoint ?? ctx.platformSettings().serving.endpointName;
      const input: DeployModelInput = {
        model,
        ...(options.backend ? { backend: options.backend } : {}),
        ...(options.endpoint ? { endpointName: options.endpoint } : {}),
      };
      await startPipeline<DeploymentResult>(ctx, options, {
        workflowType: 'deployModel',
        idPrefix: `deploy-${slug(endpoint)}`,
        input,
        format: formatDeployment,
      });
    },
  );

  withRunOptions(
    deploy
      .command('rollback')
      .description("put the endpoint's previous model version back (rollbackDeployment workflow)")
      .option('-e, --endpoint <name>', 'endpoint name (default SERVING_ENDPOINT_NAME)'),
    'rollback-<endpoint>-<time>',
  ).action(async (_options: unknown, command: Command) => {
    // `deploy` has the same options, and commander gives them to the parent: read both levels.
    const options = command.optsWithGlobals<
      {
        endpoint?: string;
      } & RunOptions
    >();
    const endpoint = options.endpoint ?? ctx.platformSettings().serving.endpointName;
    const input: RollbackDeploymentInput = options.endpoint ? { endpointName: options.endpoint } : {};
    await startPipeline<DeploymentResult>(ctx, options, {
      workflowType: 'rollbackDeployment',
      idPrefix: `rollback-${slug(endpoint)}`,
      input,
      format: formatDeployment,
    });
  });

  program
    .command('endpoints')
    .description('list endpoints: backend, status, serving model version, URL or SageMaker endpoint, previous version')
    .option('--json', 'print the endpoints documents as JSON')
    .action(async (options: { json?: boolean }) => {
      const warehouse = await openWarehouse(ctx.platformSettings().mongo);
      try {
        const list = await new EndpointStore(warehouse.db).list();
        if (options.json) {
          ctx.print(JSON.stringify(list, null, 2));
          return;
        }
        if (list.length === 0)
          ctx.print('no endpoints yet; deploy an Approved model version with `twin deploy <model>`');
        for (const endpoint of list) {
          const alive =
            endpoint.backend === 'local' && endpoint.localServer
              ? processGroupRunning(endpoint.localServer.pid)
              : undefined;
          ctx.print(formatEndpointLine(endpoint, alive));
        }
      } finally {
        await warehouse.close();
      }
    });
}
