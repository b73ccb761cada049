/**
 * `cdk synth` as a user runs it on a fresh clone: the real CLI, no AWS credentials, no Docker, no network.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { QUEUE_NAMES } from '../../src/config';

const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The environment without any AWS credentials or profile, and with nothing that could reach AWS. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_') && !key.startsWith('CDK_')),
  );
  return {
    ...env,
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    // Docker must not be needed: a `docker` on PATH that fails loudly proves synth never calls it.
    PATH: `${path.join(ROOT, 'test', 'deploy', 'no-docker')}${path.delimiter}${env.PATH ?? ''}`,
  };
}

void describe('cdk synth (offline)', () => {
  let out: string;
  let stdout = '';
  let stderr = '';

  before(async () => {
    out = await mkdtemp(path.join(os.tmpdir(), 'twin-cdk-out-'));
    const result = await run(
      path.join(ROOT, 'node_modules', '.bin', 'cdk'),
      ['synth', '--quiet', '--no-notices', '--output', out],
      {
        cwd: ROOT,
        env: offlineEnv(),
        timeout: 240_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    stdout = result.stdout;
    stderr = result.stderr;
  });

  after(async () => {
    await rm(out, { recursive: true, force: true });
  });

  void test('writes the LlmTwin template and its asset manifest', () => {
    const template = JSON.parse(readFileSync(path.join(out, 'LlmTwin.template.json'), 'utf8')) as Json;
    const types = Object.values(template.Resources as Record<string, Json>).map((r) => r.Type as string);
    assert.equal(types.filter((t) => t === 'AWS::ECS::Service').length, QUEUE_NAMES.length + 1);
    assert.ok(types.includes('AWS::ElasticLoadBalancingV2::LoadBalancer'));
    assert.ok(existsSync(path.join(out, 'LlmTwin.assets.json')));
    assert.match(
      `${stdout}${stderr}`,
      /temporal\.address is the placeholder/,
      'the placeholder Temporal address is warned about',
    );
    assert.doesNotMatch(`${stdout}${stderr}`, /docker was called/);
  });

  void test('the backlog Lambda is bundled and loadable; the image build context is only staged', () => {
    const manifest = JSON.parse(readFileSync(path.join(out, 'LlmTwin.assets.json'), 'utf8')) as Json;
    const files = Object.values(manifest.files as Record<string, Json>).map((f) => f.source as Json);
    const lambda = files.find(
      (f) =>
        f.packaging === 'zip' &&
        existsSync(path.join(out, f.path as string, 'index.js')) &&
        readFileSync(path.join(out, f.path as string, 'index.js'), 'utf8').includes('DescribeTaskQueue'),
    );
    assert.ok(lambda, 'the bundled backlog function');
    const bundle = path.join(out, lambda.path as string, 'index.js');
    // The Lambda runtime provides @aws-sdk/*; here the repository's node_modules stands in for it.
    const check = `const m = require(${JSON.stringify(bundle)}); if (typeof m.handler !== 'function') process.exit(3);`;
    return run(process.execPath, ['-e', check], {
      env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') },
    }).then(() => {
      const images = Object.values(manifest.dockerImages as Record<string, Json>);
      assert.equal(images.length, 1);
      const context = path.join(out, images[0]!.source.directory as string);
      assert.ok(existsSync(path.join(context, 'Dockerfile')));
      assert.ok(!existsSync(path.join(context, 'node_modules')));
    });
  });
});
