/**
 * Worker bundles built by `wrangler deploy --dry-run --outdir`, and their
 * sizes: the bytes of the JavaScript modules wrangler would upload, raw and
 * gzip-compressed.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { childEnv, ROOT_DIR } from './env';
import { runCommand } from './processes';

/** Maximum time for one dry-run build, in milliseconds. */
const BUILD_TIMEOUT_MS = 120_000;

export interface BundleSpec {
  readonly label: string;
  /** Wrangler configuration relative to the repository root, by default wrangler.toml. */
  readonly config?: string;
  /** Entry point that replaces the configuration's `main`, relative to the repository root. */
  readonly entry?: string;
  readonly minify: boolean;
  readonly outdir: string;
}

export interface BundleSize {
  readonly label: string;
  readonly minify: boolean;
  readonly command: string;
  /** Uploaded JavaScript modules (source maps and README excluded). */
  readonly files: readonly string[];
  readonly bytes: number;
  /** Size after gzip at zlib's default level. */
  readonly gzipBytes: number;
  /** Wrangler's own "Total Upload" line. */
  readonly wranglerSummary: string;
  /** Path of the main module. */
  readonly mainModule: string;
}

export async function buildBundle(spec: BundleSpec): Promise<BundleSize> {
  rmSync(spec.outdir, { recursive: true, force: true });
  const args = [
    'wrangler',
    'deploy',
    ...(spec.entry === undefined ? [] : [spec.entry]),
    ...(spec.config === undefined ? [] : ['--config', spec.config]),
    '--dry-run',
    '--outdir',
    spec.outdir,
    ...(spec.minify ? ['--minify'] : []),
  ];
  const { stdout, stderr } = await runCommand('npx', args, { cwd: ROOT_DIR, env: childEnv(), timeoutMs: BUILD_TIMEOUT_MS });

  const files = readdirSync(spec.outdir)
    .filter((name) => name.endsWith('.js') || name.endsWith('.mjs'))
    .sort();
  if (files.length === 0) {
    throw new Error(`wrangler wrote no JavaScript module to ${spec.outdir}.`);
  }

  let bytes = 0;
  let gzipBytes = 0;
  for (const name of files) {
    const content = readFileSync(join(spec.outdir, name));
    bytes += content.byteLength;
    gzipBytes += gzipSync(content).byteLength;
  }

  const summary = `${stdout}\n${stderr}`.split('\n').find((line) => line.includes('Total Upload')) ?? '';
  const relativeOutdir = spec.outdir.startsWith(ROOT_DIR) ? spec.outdir.slice(ROOT_DIR.length + 1) : spec.outdir;
  return {
    label: spec.label,
    minify: spec.minify,
    command: ['npx', ...args.map((arg) => (arg === spec.outdir ? relativeOutdir : arg))].join(' '),
    files,
    bytes,
    gzipBytes,
    wranglerSummary: summary.trim(),
    mainModule: join(spec.outdir, files[0] as string),
  };
}
