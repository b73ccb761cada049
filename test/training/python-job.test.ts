import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderChat, renderPrompt, type ChatMessage } from '../../src/training/chat-template';
import { effectiveHyperparameters } from '../../src/training/spec';
import { JOB_DIR, ROOT, run, trainingPython } from './helpers';

describe('jobs/finetune (Python)', () => {
  test('the CPU test suite passes: SFT then DPO on a tiny random Llama, SageMaker-style and local-style', async (t) => {
    const result = await run(
      trainingPython(),
      ['-m', 'pytest', 'jobs/finetune/tests', '-q', '-p', 'no:cacheprovider'],
      {
        env: { ...process.env, HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
        timeoutMs: 900_000,
      },
    );
    const summary = /(\d+) passed(?:, (\d+) \w+)*/.exec(result.stdout);
    t.diagnostic(`pytest: ${summary?.[0] ?? 'no summary'} in ${(result.ms / 1000).toFixed(1)} s`);
    assert.equal(result.code, 0, `pytest failed:\n${result.stdout.slice(-6000)}\n${result.stderr.slice(-3000)}`);
    assert.ok(summary && Number(summary[1]) >= 5, `expected at least 5 passing tests:\n${result.stdout.slice(-2000)}`);
    assert.doesNotMatch(result.stdout, /\d+ (failed|error)/);
  });

  test('the TypeScript chat template renders exactly what transformers renders for training', async () => {
    const conversations: { messages: ChatMessage[]; addGenerationPrompt: boolean }[] = [
      { messages: [{ role: 'user', content: 'How do you version datasets?' }], addGenerationPrompt: true },
      {
        messages: [
          { role: 'system', content: "You are Paul's twin." },
          { role: 'user', content: '  Why LoRA?\n' },
          { role: 'assistant', content: 'Because it is cheap.\n\nAnd it merges back.' },
        ],
        addGenerationPrompt: false,
      },
      {
        messages: [
          { role: 'user', content: 'First?' },
          { role: 'assistant', content: 'One.' },
          { role: 'user', content: 'Second — with "quotes" and {braces}?' },
        ],
        addGenerationPrompt: true,
      },
    ];
    const script = [
      'import json, sys',
      'from transformers.utils.chat_template_utils import render_jinja_template',
      'cases = json.load(sys.stdin)',
      "template = open('jobs/finetune/chat_template.jinja').read()",
      'out = []',
      'for case in cases:',
      "    rendered = render_jinja_template(conversations=[case['messages']], chat_template=template, add_generation_prompt=case['addGenerationPrompt'], bos_token='<s>', eos_token='</s>')",
      '    out.append(rendered[0][0] if isinstance(rendered, tuple) else rendered[0])',
      'print(json.dumps(out))',
    ].join('\n');
    const { spawn } = await import('node:child_process');
    const python = spawn(trainingPython(), ['-c', script], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    python.stdin.end(JSON.stringify(conversations));
    let stdout = '';
    let stderr = '';
    python.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    python.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => python.once('exit', resolve));
    assert.equal(code, 0, stderr);
    const fromPython = JSON.parse(stdout) as string[];
    const fromTs = conversations.map((c) =>
      renderChat(c.messages, { addGenerationPrompt: c.addGenerationPrompt, bosToken: '<s>', eosToken: '</s>' }),
    );
    assert.deepEqual(fromTs, fromPython);
    assert.equal(fromTs[0], '<s>### Instruction:\nHow do you version datasets?\n\n### Response:\n');
    assert.equal(renderPrompt('Hi?'), '### Instruction:\nHi?\n\n### Response:\n');
    assert.ok(!renderPrompt('Hi?').endsWith(' '), 'the generation prompt must not end in a space');
  });

  test('TypeScript reads the same hyperparameter defaults as train.py (the reference values)', () => {
    const sft = effectiveHyperparameters('sft');
    assert.equal(sft.lora_r, 32);
    assert.equal(sft.lora_alpha, 32);
    assert.equal(sft.lora_dropout, 0);
    assert.equal(sft.lora_target_modules, 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj');
    assert.equal(sft.max_length, 2048);
    assert.equal(sft.learning_rate, 3e-4);
    assert.equal(sft.num_train_epochs, 3);
    assert.equal(sft.per_device_train_batch_size, 2);
    assert.equal(sft.gradient_accumulation_steps, 8);
    assert.equal(sft.beta, undefined);
    const dpo = effectiveHyperparameters('dpo', { max_steps: 5 });
    assert.equal(dpo.beta, 0.5);
    assert.equal(dpo.learning_rate, 2e-6);
    assert.equal(dpo.num_train_epochs, 1);
    assert.equal(dpo.max_steps, 5);
    assert.ok(JOB_DIR.endsWith('jobs/finetune'));
  });
});
