import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CrawlError } from '../errors';
import type { SsrfPolicy } from '../ssrf';
import type { Completeness, CrawlerId } from '../types';

const execFileP = promisify(execFile);

/**
 * GitHub repositories: a shallow clone (`git clone --depth 1 --single-branch --no-tags`) of the default branch
 * into a temporary directory, with a timeout; then the tracked files (`git ls-files`, so everything .gitignore
 * excludes is out) that are text: binaries (NUL bytes or invalid UTF-8, or a binary extension), lock files,
 * vendored / generated folders and files (incl. .gitattributes linguist-vendored / linguist-generated),
 * minified bundles, symlinks and files over `maxFileBytes` are skipped. Stored as {path: text} up to
 * `maxTotalBytes`; hitting that cap is reported (completeness 'truncated', metadata.skipped.overTotal).
 */

export interface GithubOptions {
  /** clone URL for owner/repo (default https://github.com/OWNER/REPO.git); tests point it at a local git daemon */
  cloneUrl?: (owner: string, repo: string) => string;
  /** git transports allowed (default ['https']); tests add 'git' or 'file' */
  allowedProtocols?: string[];
  /** whole clone time limit (default 120 s) */
  timeoutMs?: number;
  /** per-file size cap (default 256 KiB) */
  maxFileBytes?: number;
  /** total size cap of the stored files (default 8 MiB) */
  maxTotalBytes?: number;
  /** most files stored (default 5 000) */
  maxFiles?: number;
}

export const GITHUB_CRAWLER: CrawlerId = { name: 'github', version: '1.0.0' };

const LOCK_FILES = new Set([
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lockb',
  'bun.lock',
  'cargo.lock',
  'poetry.lock',
  'pipfile.lock',
  'pdm.lock',
  'uv.lock',
  'composer.lock',
  'gemfile.lock',
  'go.sum',
  'podfile.lock',
  'packages.lock.json',
  'flake.lock',
  'mix.lock',
  'pubspec.lock',
  'gradle.lockfile',
]);
const VENDORED_DIRS = new Set([
  'node_modules',
  'vendor',
  'vendors',
  'third_party',
  'third-party',
  'thirdparty',
  'external',
  'bower_components',
  'jspm_packages',
  'dist',
  'build',
  'out',
  'target',
  '.next',
  '.nuxt',
  '__pycache__',
  '.venv',
  'venv',
  'env',
  'site-packages',
  'coverage',
  '.yarn',
  'pods',
  'carthage',
  '.gradle',
  '.idea',
  '.vscode',
  'generated',
  '__generated__',
  '.git',
  '.terraform',
  'cdk.out',
  '.tox',
  '.mypy_cache',
  '.pytest_cache',
  'htmlcov',
]);
const BINARY_EXT = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'bmp',
  'ico',
  'icns',
  'webp',
  'avif',
  'tif',
  'tiff',
  'psd',
  'svgz',
  'pdf',
  'zip',
  'gz',
  'tgz',
  'bz2',
  'xz',
  'zst',
  '7z',
  'rar',
  'tar',
  'jar',
  'war',
  'ear',
  'whl',
  'egg',
  'woff',
  'woff2',
  'ttf',
  'otf',
  'eot',
  'mp3',
  'mp4',
  'm4a',
  'wav',
  'ogg',
  'flac',
  'webm',
  'mov',
  'avi',
  'mkv',
  'so',
  'dylib',
  'dll',
  'exe',
  'bin',
  'o',
  'a',
  'lib',
  'class',
  'pyc',
  'pyo',
  'pyd',
  'wasm',
  'onnx',
  'pt',
  'pth',
  'ckpt',
  'safetensors',
  'h5',
  'hdf5',
  'pkl',
  'pickle',
  'npy',
  'npz',
  'parquet',
  'arrow',
  'feather',
  'avro',
  'orc',
  'db',
  'sqlite',
  'sqlite3',
  'dat',
  'iso',
  'dmg',
  'apk',
  'ipa',
  'deb',
  'rpm',
  'msi',
  'xls',
  'xlsx',
  'doc',
  'docx',
  'ppt',
  'pptx',
  'key',
  'numbers',
  'pages',
  'sketch',
  'fig',
  'blend',
  'fbx',
  'glb',
  'gltf',
  'stl',
  'obj',
  'tflite',
  'pb',
  'mlmodel',
]);

export interface RepositoryCrawl {
  owner: string;
  repo: string;
  files: Record<string, string>;
  commit: string;
  branch: string;
  totalBytes: number;
  skipped: { binary: number; lock: number; vendored: number; tooLarge: number; overTotal: number; symlink: number };
  completeness: Completeness;
  warnings: string[];
}

/** owner/repo of a github.com repository URL, or undefined. */
export function parseGithubRepo(url: URL): { owner: string; repo: string } | undefined {
  if (url.hostname !== 'github.com' && url.hostname !== 'www.github.com') return undefined;
  const m = /^\/([A-Za-z\d](?:[A-Za-z\d-]{0,38}))\/([\w.-]+?)(?:\.git)?(?:\/.*)?$/.exec(url.pathname);
  if (!m?.[1] || !m[2]) return undefined;
  const reserved = new Set([
    'orgs',
    'settings',
    'marketplace',
    'features',
    'topics',
    'collections',
    'sponsors',
    'about',
    'login',
    'search',
    'explore',
    'notifications',
    'pulls',
    'issues',
    'apps',
  ]);
  if (reserved.has(m[1].toLowerCase())) return undefined;
  return { owner: m[1], repo: m[2] };
}

function skipReason(path: string): 'lock' | 'vendored' | 'binary' | undefined {
  const parts = path.split('/');
  const base = (parts[parts.length - 1] ?? '').toLowerCase();
  if (LOCK_FILES.has(base) || base.endsWith('.lock')) return 'lock';
  if (parts.slice(0, -1).some((p) => VENDORED_DIRS.has(p.toLowerCase()))) return 'vendored';
  if (
    /\.min\.(js|css|mjs)$|\.(map|bundle\.js|chunk\.js)$|(^|\.)pb2?\.(py|go)$|_pb2\.py$|\.pb\.go$|\.designer\.cs$/.test(
      base,
    )
  )
    return 'vendored';
  const ext = base.includes('.') ? base.slice(base.lastIndexOf('.') + 1) : '';
  if (BINARY_EXT.has(ext)) return 'binary';
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function asText(buf: Buffer): string | undefined {
  if (buf.subarray(0, 8000).includes(0)) return undefined;
  try {
    return utf8.decode(buf).replace(/^\uFEFF/, '');
  } catch {
    return undefined;
  }
}

async function git(args: string[], options: { cwd?: string; timeoutMs: number; protocols: string[] }): Promise<string> {
  const { stdout } = await execFileP(
    'git',
    ['-c', 'core.hooksPath=/dev/null', '-c', 'core.symlinks=false', '-c', 'core.fsmonitor=false', ...args],
    {
      cwd: options.cwd,
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        GIT_TERMINAL_PROMPT: '0',
        GIT_ASKPASS: 'true',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_ALLOW_PROTOCOL: options.protocols.join(':'),
        GIT_LFS_SKIP_SMUDGE: '1',
        LC_ALL: 'C',
      },
    },
  );
  return stdout;
}

function classifyGitError(err: unknown, url: string, timeoutMs: number): CrawlError {
  const e = err as { killed?: boolean; signal?: string; stderr?: string; message?: string; code?: unknown };
  const stderr = String(e.stderr ?? e.message ?? '');
  if (e.killed || e.signal === 'SIGKILL')
    return new CrawlError('timeout', `git clone did not finish in ${timeoutMs} ms`, { url, cause: err });
  if (e.code === 'ENOENT') return new CrawlError('network', 'git is not installed on this worker', { url, cause: err });
  if (
    /not found|does not exist|could not read Username|Authentication failed|terminal prompts disabled|access denied|not appear to be a git repository/i.test(
      stderr,
    )
  ) {
    return new CrawlError('http-4xx', `repository not found or private: ${firstLine(stderr)}`, {
      url,
      status: 404,
      cause: err,
    });
  }
  if (/transport '.*' not allowed|unsupported protocol/i.test(stderr))
    return new CrawlError('blocked', `git transport refused: ${firstLine(stderr)}`, { url, cause: err });
  if (/HTTP 429|rate limit/i.test(stderr))
    return new CrawlError('rate-limited', `git host rate-limited us: ${firstLine(stderr)}`, {
      url,
      status: 429,
      cause: err,
    });
  if (/The requested URL returned error: 5\d\d|HTTP 5\d\d/i.test(stderr))
    return new CrawlError('http-5xx', `git host error: ${firstLine(stderr)}`, { url, cause: err });
  if (
    /timed out|Connection refused|Could not resolve host|unable to access|early EOF|connection reset|remote end hung up/i.test(
      stderr,
    )
  ) {
    return new CrawlError('network', `git clone failed: ${firstLine(stderr)}`, { url, cause: err });
  }
  return new CrawlError('network', `git clone failed: ${firstLine(stderr) || String(e.message)}`, { url, cause: err });
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.replace(/^(fatal|error|remote):\s*/i, '').trim())
      .find((l) => l && !/^Cloning into/.test(l)) ?? ''
  ).slice(0, 300);
}

/** Clones and reads a repository. `ssrf` checks the clone host's addresses before git connects. */
export async function crawlRepository(
  owner: string,
  repo: string,
  ssrf: SsrfPolicy,
  options: GithubOptions = {},
): Promise<RepositoryCrawl> {
  const cloneUrl = options.cloneUrl ? options.cloneUrl(owner, repo) : `https://github.com/${owner}/${repo}.git`;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const maxFileBytes = options.maxFileBytes ?? 256 * 1024;
  const maxTotalBytes = options.maxTotalBytes ?? 8 * 1024 * 1024;
  const maxFiles = options.maxFiles ?? 5_000;
  const protocols = options.allowedProtocols ?? ['https'];

  let parsed: URL | undefined;
  try {
    parsed = new URL(cloneUrl);
  } catch {
    parsed = undefined;
  }
  const scheme = parsed?.protocol.replace(/:$/, '') ?? '';
  if (!parsed || !protocols.includes(scheme))
    throw new CrawlError('blocked', `git transport ${scheme || '?'} is not allowed`, { url: cloneUrl });
  if (parsed.username || parsed.password)
    throw new CrawlError('invalid-url', 'clone URLs with credentials are refused', {
      url: `${parsed.protocol}//${parsed.host}${parsed.pathname}`,
    });
  if (scheme !== 'file') await ssrf.resolveAndCheck(parsed.hostname, cloneUrl);

  const dir = await mkdtemp(join(tmpdir(), 'twin-repo-'));
  const started = Date.now();
  const remaining = (): number => Math.max(1_000, timeoutMs - (Date.now() - started));
  try {
    try {
      await git(['clone', '--depth', '1', '--single-branch', '--no-tags', '--quiet', cloneUrl, join(dir, 'r')], {
        timeoutMs,
        protocols,
      });
    } catch (err) {
      throw classifyGitError(err, cloneUrl, timeoutMs);
    }
    const work = join(dir, 'r');
    const opts = { cwd: work, timeoutMs: remaining(), protocols };
    const commit = (await git(['rev-parse', 'HEAD'], opts)).trim();
    const branch = (await git(['rev-parse', '--abbrev-ref', 'HEAD'], opts)).trim();
    // "<mode> <sha> <stage>\t<path>": 120000 = symlink, 160000 = submodule — neither is file content.
    const links = new Set<string>();
    const paths: string[] = [];
    for (const entry of (await git(['ls-files', '-z', '-s'], opts)).split('\0')) {
      const tab = entry.indexOf('\t');
      if (tab < 0) continue;
      const mode = entry.slice(0, 6);
      const path = entry.slice(tab + 1);
      if (mode === '120000' || mode === '160000') links.add(path);
      paths.push(path);
    }

    // .gitattributes: linguist-vendored / linguist-generated files are not the author's writing.
    const marked = new Set<string>();
    if (paths.length) {
      const attrs = await new Promise<string>((resolve) => {
        const child = execFile(
          'git',
          ['check-attr', '-z', '--stdin', 'linguist-vendored', 'linguist-generated'],
          {
            cwd: work,
            timeout: remaining(),
            maxBuffer: 64 * 1024 * 1024,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', HOME: tmpdir() },
          },
          (err, stdout) => resolve(err ? '' : stdout),
        );
        child.stdin?.end(paths.join('\0') + '\0');
      });
      const fields = attrs.split('\0');
      for (let i = 0; i + 2 < fields.length; i += 3)
        if (fields[i + 2] === 'set' || fields[i + 2] === 'true') marked.add(fields[i]!);
    }

    const ordered = [...paths].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const files: Record<string, string> = {};
    const skipped = { binary: 0, lock: 0, vendored: 0, tooLarge: 0, overTotal: 0, symlink: 0 };
    let total = 0;
    let stored = 0;
    for (const path of ordered) {
      const reason = marked.has(path) ? 'vendored' : skipReason(path);
      if (reason) {
        skipped[reason]++;
        continue;
      }
      const full = join(work, path);
      const st = await lstat(full).catch(() => undefined);
      if (links.has(path) || !st || st.isSymbolicLink() || !st.isFile()) {
        skipped.symlink++;
        continue;
      }
      if (st.size > maxFileBytes) {
        skipped.tooLarge++;
        continue;
      }
      if (total + st.size > maxTotalBytes || stored >= maxFiles) {
        skipped.overTotal++;
        continue;
      }
      const text = asText(await readFile(full));
      if (text === undefined) {
        skipped.binary++;
        continue;
      }
      files[path] = text;
      total += Buffer.byteLength(text);
      stored++;
    }
    const warnings: string[] = [];
    const completeness: Completeness = skipped.overTotal > 0 ? 'truncated' : 'complete';
    if (skipped.overTotal > 0)
      warnings.push(
        `total size cap of ${maxTotalBytes} bytes (or ${maxFiles} files) reached: ${skipped.overTotal} text files not stored`,
      );
    if (skipped.tooLarge > 0)
      warnings.push(`${skipped.tooLarge} files over the ${maxFileBytes}-byte per-file cap skipped`);
    return { owner, repo, files, commit, branch, totalBytes: total, skipped, completeness, warnings };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** README and docs first, then sources, so the size cap keeps what describes the project. */
function rank(path: string): number {
  const base = path.split('/').pop()?.toLowerCase() ?? '';
  if (!path.includes('/') && base.startsWith('readme')) return 0;
  if (/\.(md|rst|txt|adoc)$/.test(base)) return 1;
  return 2;
}
