import { Option, type Command } from 'commander';
import { parseSettings } from '../config';
import {
  DEFAULT_QUESTION,
  runDemo,
  stopLocalModelServers,
  type DemoOptions,
  type DemoPlatformMode,
} from '../demo/demo';
import type { CliContext } from './context';

const list = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];

/**
 * `twin demo`: the whole twin end to end (src/demo/demo.ts). Offline by default: its own local platform, the
 * sample site, the local Gemma LLM, a tiny model trained locally, a local endpoint, one RAG answer with sources.
 */
export function registerDemoCommands(program: Command, ctx: Pick<CliContext, 'print'>): void {
  program
    .command('demo')
    .description(
      'run the whole twin end to end (ETL → features → datasets → SFT → DPO → evaluation → deploy → RAG answer); offline by default',
    )
    .addOption(
      new Option(
        '--platform <mode>',
        'own: start a platform in this process; running: use `twin dev` / configured services; auto: running when one is found and --links are given',
      )
        .choices(['auto', 'own', 'running'])
        .default('auto'),
    )
    .option('--author <name>', 'author of --links (default: the sample site author)')
    .option('--links <urls>', 'comma-separated links to crawl instead of the offline sample site (repeatable)', list)
    .option(
      '--articles <n>',
      'sample-site articles to crawl (more = longer LLM work)',
      (v) => Number.parseInt(v, 10),
      2,
    )
    .addOption(
      new Option(
        '--llm <which>',
        'local: start the offline Gemma 3 270M server; configured: OPENAI_BASE_URL / OPENAI_API_KEY',
      ).choices(['local', 'configured']),
    )
    .addOption(new Option('--training <backend>', 'training backend').choices(['local', 'sagemaker']))
    .addOption(new Option('--deployment <backend>', 'deployment backend').choices(['local', 'sagemaker']))
    .option('--base-model <id>', 'SFT base model (default: a tiny random Llama built offline for local training)')
    .option('--skip-dpo', 'SFT only (the default with the local Gemma)')
    .option('--dpo', 'SFT then DPO even with the local Gemma')
    .option('--approval', 'require the approval step (the demo answers it itself, labelled as such)')
    .option('--max-samples <n>', 'evaluation rows judged', (v) => Number.parseInt(v, 10), 4)
    .option('-q, --question <text>', 'the RAG question asked at the end', DEFAULT_QUESTION)
    .option('--keep', 'keep the demo platform (and its Web UI) running afterwards, until Ctrl-C')
    .option('--json', 'print the report as JSON at the end')
    .action(
      async (o: {
        platform: DemoPlatformMode;
        author?: string;
        links?: string[];
        articles: number;
        llm?: 'local' | 'configured';
        training?: 'local' | 'sagemaker';
        deployment?: 'local' | 'sagemaker';
        baseModel?: string;
        skipDpo?: boolean;
        dpo?: boolean;
        approval?: boolean;
        maxSamples: number;
        question: string;
        keep?: boolean;
        json?: boolean;
      }) => {
        if (o.links?.length && !o.author) {
          process.stderr.write('twin: --links needs --author (whose writing it is)\n');
          process.exit(1);
        }
        const options: DemoOptions = {
          platform: o.platform,
          articles: o.articles,
          maxSamples: o.maxSamples,
          question: o.question,
          print: ctx.print,
          ...(o.author ? { author: o.author } : {}),
          ...(o.links?.length ? { links: o.links } : {}),
          ...(o.llm ? { llm: o.llm } : {}),
          ...(o.training ? { trainingBackend: o.training } : {}),
          ...(o.deployment ? { deploymentBackend: o.deployment } : {}),
          ...(o.baseModel ? { baseModel: o.baseModel } : {}),
          ...(o.skipDpo ? { skipDpo: true } : o.dpo ? { skipDpo: false } : {}),
          ...(o.approval ? { approval: true } : {}),
          ...(o.keep ? { keep: true } : {}),
        };
        const report = await runDemo(options);
        if (o.json) {
          const { platformHandle: _platform, ...printable } = report;
          ctx.print(JSON.stringify(printable, null, 2));
        }
        const platform = report.platformHandle;
        if (!platform) return;
        ctx.print('The demo platform keeps running (--keep). Ctrl-C stops it.');
        await new Promise<void>((resolve) => {
          const stop = () =>
            void platform
              .stop()
              .then(() => stopLocalModelServers(parseSettings(process.env)))
              .finally(resolve);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      },
    );
}
