/**
 * The SageMaker generation backend: InvokeEndpoint against moto (TGI response shape, endpoint status from
 * DescribeEndpoint), the request bodies of the TGI and LMI containers and InvokeEndpointWithResponseStream's event
 * stream with scripted SDK responses (moto does not stream), and the service answering through an endpoint that
 * the `endpoints` collection names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import {
  InvokeEndpointCommand,
  InvokeEndpointWithResponseStreamCommand,
  SageMakerRuntimeClient,
  type ResponseStream,
} from '@aws-sdk/client-sagemaker-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { MongoClient } from 'mongodb';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { GeneratorError, SageMakerGenerator, sageMakerRequest } from '../../src/rag/generator';
import { buildMessages } from '../../src/rag/prompt';
import { createRagService } from '../../src/rag/service';
import { TRACES_COLLECTION, type TraceRecord } from '../../src/rag/tracing';
import { RagError } from '../../src/rag/types';
import { chatTemplateChecksum } from '../../src/training/chat-template';
import { testEnv, uniqueName } from '../support/env';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { closeRagFixtures, ragScript, ragSettings } from './helpers';

const region = process.env.AWS_REGION ?? 'us-east-1';
const aws = () => ({ region, endpoint: testEnv.awsEndpoint });
const MESSAGES = buildMessages('What is an LLM twin?', '[1] title: LLM twin\nAn AI character that writes like you.');
const OPTIONS = { maxTokens: 64, temperature: 0.5 };

async function queueMotoResults(bodies: string[]): Promise<void> {
  const response = await fetch(`${testEnv.awsEndpoint}/moto-api/static/sagemaker/endpoint-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      region,
      results: bodies.map((Body) => ({
        Body,
        ContentType: 'application/json',
        InvokedProductionVariant: 'AllTraffic',
      })),
    }),
  });
  assert.equal(response.status, 201);
}

async function createMotoEndpoint(name: string): Promise<void> {
  const sm = new SageMakerClient({ region, endpoint: testEnv.awsEndpoint });
  await sm.send(
    new CreateModelCommand({
      ModelName: `${name}-model`,
      ExecutionRoleArn: 'arn:aws:iam::123456789012:role/twin',
      PrimaryContainer: {
        Image: '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:latest',
      },
    }),
  );
  await sm.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: `${name}-config`,
      ProductionVariants: [
        {
          VariantName: 'AllTraffic',
          ModelName: `${name}-model`,
          InstanceType: 'ml.g4dn.xlarge',
          InitialInstanceCount: 1,
        },
      ],
    }),
  );
  await sm.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: `${name}-config` }));
  sm.destroy();
}

function events(parts: string[]): AsyncIterable<ResponseStream> {
  return (async function* () {
    for (const part of parts) yield { PayloadPart: { Bytes: new TextEncoder().encode(part) } };
  })();
}

describe('SageMaker generation backend', () => {
  test('InvokeEndpoint (moto): the TGI answer and its token count', async () => {
    await queueMotoResults([
      JSON.stringify([{ generated_text: 'Hello from SageMaker', details: { generated_tokens: 4 } }]),
    ]);
    const generator = new SageMakerGenerator({ endpointName: uniqueName('twin-ep'), payload: 'tgi', aws: aws() });
    try {
      const generation = await generator.generate(MESSAGES, OPTIONS);
      assert.equal(generation.text, 'Hello from SageMaker');
      assert.equal(generation.usage.outputTokens, 4);
      assert.ok(generation.usage.inputTokens > 10);
    } finally {
      await generator.close();
    }
  });

  test('request bodies: the twin’s chat template, TGI and LMI parameters', async () => {
    const runtime = new SageMakerRuntimeClient({ region, endpoint: 'http://127.0.0.1:9' });
    const mock = mockClient(runtime);
    mock.on(InvokeEndpointCommand).resolves({ Body: new TextEncoder().encode('{"generated_text":"ok"}') as never });
    try {
      for (const payload of ['tgi', 'lmi'] as const) {
        const generator = new SageMakerGenerator({ endpointName: 'twin', payload, aws: aws(), runtime });
        assert.equal((await generator.generate(MESSAGES, OPTIONS)).text, 'ok');
      }
      const [tgi, lmi] = mock
        .commandCalls(InvokeEndpointCommand)
        .map(
          (call) =>
            JSON.parse(new TextDecoder().decode(call.args[0].input.Body as Uint8Array)) as Record<string, unknown>,
        );
      const prompt = tgi!.inputs as string;
      assert.ok(prompt.startsWith(MESSAGES[0]!.content), 'system prompt first');
      assert.ok(prompt.includes('### Instruction:\nContext:\n[1] title: LLM twin'), 'the user turn in the template');
      assert.ok(prompt.endsWith('### Response:\n'), 'the generation prompt of the training template');
      assert.deepEqual(tgi!.parameters, {
        max_new_tokens: 64,
        do_sample: true,
        temperature: 0.5,
        return_full_text: false,
        details: true,
      });
      assert.equal(tgi!.stream, false);
      assert.deepEqual(lmi, { inputs: prompt, parameters: { max_new_tokens: 64, do_sample: true, temperature: 0.5 } });
      assert.deepEqual(sageMakerRequest('tgi', 'p', { maxTokens: 5, temperature: 0 }, true).parameters, {
        max_new_tokens: 5,
        do_sample: false,
        return_full_text: false,
        details: false,
      });
    } finally {
      mock.restore();
    }
  });

  test('InvokeEndpointWithResponseStream: TGI server-sent events split across payload parts', async () => {
    const runtime = new SageMakerRuntimeClient({ region, endpoint: 'http://127.0.0.1:9' });
    const mock = mockClient(runtime);
    const tgi = (text: string, special = false) =>
      `data:${JSON.stringify({ token: { id: 1, text, logprob: -0.1, special }, generated_text: null, details: null })}\n\n`;
    const stream = [tgi('Hello'), tgi(' twin'), tgi('</s>', true)].join('');
    mock.on(InvokeEndpointWithResponseStreamCommand).resolves({
      Body: events([stream.slice(0, 17), stream.slice(17, 90), stream.slice(90)]),
    });
    try {
      const generator = new SageMakerGenerator({ endpointName: 'twin', payload: 'tgi', aws: aws(), runtime });
      const tokens: string[] = [];
      const iterator = generator.stream(MESSAGES, OPTIONS);
      let result = await iterator.next();
      while (!result.done) {
        tokens.push(result.value);
        result = await iterator.next();
      }
      assert.deepEqual(tokens, ['Hello', ' twin']);
      assert.equal(result.value.text, 'Hello twin');
      const body = JSON.parse(
        new TextDecoder().decode(
          mock.commandCalls(InvokeEndpointWithResponseStreamCommand)[0]!.args[0].input.Body as Uint8Array,
        ),
      ) as { stream: boolean };
      assert.equal(body.stream, true);

      // LMI jsonlines, and a model error mid-stream
      mock.on(InvokeEndpointWithResponseStreamCommand).resolves({
        Body: (async function* () {
          yield { PayloadPart: { Bytes: new TextEncoder().encode('{"token": {"text": "Hi"}}\n') } };
          yield { ModelStreamError: { Message: 'CUDA out of memory', ErrorCode: 'ModelError' } } as ResponseStream;
        })(),
      });
      const lmi = new SageMakerGenerator({ endpointName: 'twin', payload: 'lmi', aws: aws(), runtime });
      const seen: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const token of lmi.stream(MESSAGES, OPTIONS)) seen.push(token);
        })(),
        (e: unknown) => e instanceof GeneratorError && !e.unavailable && /CUDA out of memory/.test(e.message),
      );
      assert.deepEqual(seen, ['Hi']);
    } finally {
      mock.restore();
    }
  });

  test('check(): an InService endpoint is ready, a missing one is unavailable (moto DescribeEndpoint)', async () => {
    const name = uniqueName('twin-ready').replace(/_/g, '-');
    await createMotoEndpoint(name);
    await new SageMakerGenerator({ endpointName: name, payload: 'tgi', aws: aws() }).check();
    await assert.rejects(
      new SageMakerGenerator({ endpointName: `${name}-missing`, payload: 'tgi', aws: aws() }).check(),
      (e: unknown) => e instanceof GeneratorError && e.unavailable,
    );
  });

  describe('through the RAG service', () => {
    const database = uniqueName('raggen');
    const prefix = `${uniqueName('raggen')}_`;
    let llm: ScriptedLlmServer;
    let deps: Dependencies;
    let mongo: MongoClient;

    before(async () => {
      llm = await startScriptedLlmServer(ragScript());
      deps = createDependencies(ragSettings({ database, prefix, llmUrl: llm.url }), createLogger({ level: 'error' }));
      mongo = await MongoClient.connect(testEnv.mongoUri);
    });
    after(async () => {
      await closeRagFixtures(deps, mongo, database);
      await llm?.close();
    });

    test('RAG_GENERATOR=endpoint with a sagemaker endpoints record answers through SageMaker', async () => {
      const name = uniqueName('twin-sm').replace(/_/g, '-');
      await createMotoEndpoint(name);
      await mongo
        .db(database)
        .collection('endpoints')
        .insertOne({
          _id: 'llm-twin' as never,
          backend: 'sagemaker',
          status: 'InService',
          sagemakerEndpointName: name,
          modelVersion: 'dpo-v7',
        });
      await queueMotoResults([JSON.stringify([{ generated_text: 'The twin answers.' }])]);
      const rag = createRagService(
        ragSettings(
          { database, prefix, llmUrl: llm.url },
          { RAG_GENERATOR: 'endpoint', AWS_ENDPOINT_URL: testEnv.awsEndpoint },
        ),
        { dependencies: deps },
      );
      try {
        const answer = await rag.answer({ query: 'What is an LLM twin?' });
        assert.equal(answer.answer, 'The twin answers.');
        assert.equal(answer.model, 'dpo-v7');
        const checks = await rag.ready();
        assert.equal(checks.llm!.ok, true, checks.llm!.error);
        await rag.flushTraces();
        const trace = await mongo
          .db(database)
          .collection<TraceRecord>(TRACES_COLLECTION)
          .findOne({ _id: answer.traceId });
        assert.equal(trace?.chatTemplateChecksum, chatTemplateChecksum());
        assert.equal(trace?.models.generator, 'dpo-v7');
        assert.equal(trace?.spans.find((s) => s.name === 'generation')?.attributes.backend, 'endpoint');
      } finally {
        await rag.close();
      }
    });

    test('an endpoint that is not serving → dependency_unavailable llm', async () => {
      await mongo
        .db(database)
        .collection('endpoints')
        .insertOne({ _id: 'creating' as never, backend: 'sagemaker', status: 'Creating', sagemakerEndpointName: 'x' });
      const rag = createRagService(
        ragSettings(
          { database, prefix, llmUrl: llm.url },
          { RAG_GENERATOR: 'endpoint', RAG_ENDPOINT_NAME: 'creating' },
        ),
        { dependencies: deps },
      );
      try {
        await assert.rejects(
          rag.answer({ query: 'What is an LLM twin?' }),
          (e: unknown) =>
            e instanceof RagError &&
            e.code === 'dependency_unavailable' &&
            e.dependency === 'llm' &&
            /Creating/.test(e.message),
        );
      } finally {
        await rag.close();
      }
    });
  });
});
