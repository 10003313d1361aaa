/**
 * Serves a built worker bundle with workerd through Miniflare's API. Requests
 * reach workerd's own socket directly, without the proxy that `wrangler dev`
 * puts in front of the worker.
 */
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Miniflare } from 'miniflare';
import { LOOPBACK_HOST } from './env';

/** The compatibility date of bench/wrangler.toml and the root wrangler.toml. */
const COMPATIBILITY_DATE = '2026-04-01';

export interface WorkerdOptions {
  /** The main module written by `wrangler deploy --dry-run --outdir`. */
  readonly scriptPath: string;
  readonly port: number;
  readonly bindings: Readonly<Record<string, string>>;
  /** File that receives workerd's output and the worker's console lines. */
  readonly logFile: string;
}

export interface WorkerdServer {
  readonly url: string;
  readonly miniflare: Miniflare;
  dispose(): Promise<void>;
}

export async function startWorkerd(options: WorkerdOptions): Promise<WorkerdServer> {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const miniflare = new Miniflare({
    scriptPath: options.scriptPath,
    modules: true,
    compatibilityDate: COMPATIBILITY_DATE,
    kvNamespaces: ['CONNECT_KV'],
    bindings: { ...options.bindings },
    host: LOOPBACK_HOST,
    port: options.port,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.pipe(log, { end: false });
      stderr.pipe(log, { end: false });
    },
    handleStructuredLogs({ level, message }: { level: string; message: string }) {
      log.write(`${level}: ${message}\n`);
    },
  });

  let disposed: Promise<void> | undefined;
  const dispose = () => {
    disposed ??= miniflare.dispose().finally(() => log.end());
    return disposed;
  };

  try {
    const ready = await miniflare.ready;
    return { url: ready.origin, miniflare, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
