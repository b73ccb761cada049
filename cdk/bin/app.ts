/**
 * CDK app entry: `npx cdk synth` / `npx cdk deploy` from the repository root (cdk.json points here).
 * Configuration: cdk/lib/config.ts (defaults) overridden by `-c twin:config=<file.yaml|json>` and the
 * shortcut context keys documented in docs/deploy.md.
 */
import { App } from 'aws-cdk-lib';
import { configFromContext } from '../lib/config';
import { TwinStack } from '../lib/twin-stack';

const app = new App();
const config = configFromContext((key) => app.node.tryGetContext(key));
const account = config.account ?? process.env.CDK_DEFAULT_ACCOUNT;
const region = config.region ?? process.env.CDK_DEFAULT_REGION;
new TwinStack(app, config.stackName, {
  config,
  stackName: config.stackName,
  description:
    'LLM Twin on Temporal: ECS Fargate workers per task queue, RAG API, S3 artifacts, SageMaker role, secrets',
  ...(account || region ? { env: { account, region } } : {}),
});
app.synth();
