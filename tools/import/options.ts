/**
 * Command-line options of `npm run import-installations`. The encryption key
 * is read from the environment or a file, never from the command line, where
 * it would land in shell history and process listings.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllowList, type AllowList } from '../../src/connect/allow-list';
import { SOURCE_NAMES, type SourceName } from './source';
import { ACE_DEFAULT_TABLE } from './sources/ace';
import { SPRING_DEFAULT_TABLE } from './sources/spring';

export const TARGET_NAMES = ['local', 'bulk-file'] as const;

export type TargetName = (typeof TARGET_NAMES)[number];

/** wrangler dev's own default for --persist-to, relative to the wrangler configuration. */
export const DEFAULT_PERSIST_TO = '.wrangler/state';

export const DEFAULT_BINDING = 'CONNECT_KV';

export interface ImportOptions {
  readonly source: SourceName;
  /** SQLite or JSON Lines file, for the sources that read one. */
  readonly file?: string;
  /** Database URL, for the PostgreSQL and Redis sources. */
  readonly url?: string;
  readonly table: string;
  /** From --app-key; undefined means the key of the app's descriptor (see run.ts). */
  readonly appKey?: string;
  readonly allowList: AllowList;
  readonly target: TargetName;
  /** Explicit --persist-to, resolved; undefined means wrangler's default beside its configuration. */
  readonly persistTo?: string;
  /** Explicit --config, resolved; undefined lets wrangler find its configuration. */
  readonly configPath?: string;
  readonly binding: string;
  readonly out?: string;
  readonly existingKeysFile?: string;
  readonly dryRun: boolean;
  readonly force: boolean;
  readonly encryptionKey: string;
  readonly encryptionKeyOrigin: string;
  readonly oldEncryptionKeys: readonly string[];
}

/** A mistake in the command line or environment; the message explains how to fix it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const HELP_TEXT = `Usage: npm run import-installations -- --from <source> [options]

Copies every installation from an existing Connect app store into this
framework's installation store, validated like an install and encrypted
with CONNECT_ENCRYPTION_KEY.

Sources:
  --from ace-sqlite --file <path>        atlassian-connect-express SQLite store
  --from ace-postgres --url <url>        atlassian-connect-express PostgreSQL store
  --from ace-redis --url <url>           atlassian-connect-express Redis store
  --from spring-postgres --url <url>     atlassian-connect-spring-boot atlassian_host table
  --from jsonl --file <path>             one installed payload (JSON) per line
  --table <name>                         table to read (default: ${ACE_DEFAULT_TABLE} for ACE,
                                         ${SPRING_DEFAULT_TABLE} for spring-boot)

Target:
  --target local                         wrangler dev's local KV (default)
    --persist-to <dir>                   directory given to wrangler dev --persist-to
                                         (default: ${DEFAULT_PERSIST_TO} beside the wrangler configuration)
    --config <path>                      wrangler configuration with the KV namespace id
  --target bulk-file                     a file for wrangler kv bulk put --remote
    --out <path>                         the file to write
    --existing <path>                    output of: npx wrangler kv key list --remote
                                         --binding ${DEFAULT_BINDING} --prefix installation:
  --binding <name>                       KV binding (default: ${DEFAULT_BINDING})

Checks:
  --app-key <key>                        the app key installs must carry
                                         (default: the key in src/app/descriptor.ts)
  --allowed-base-urls <origins>          comma-separated origins for baseUrl and baseApiUrl
                                         (default: https://bitbucket.org,https://api.bitbucket.org)

Behaviour:
  --dry-run                              validate and report; write nothing
  --force                                overwrite records the worker wrote after an import
  --encryption-key-file <path>           file holding the key; otherwise the
                                         CONNECT_ENCRYPTION_KEY environment variable
                                         (CONNECT_ENCRYPTION_OLD_KEYS: older keys that still decrypt)

Exit status: 0 when every row was imported, unchanged, kept or ignored;
1 when a row was skipped because it is invalid or could not be written;
2 when the import could not run.`;

/** Parses argv (without the node and script arguments); paths resolve against `workingDirectory`. */
export function parseImportOptions(
  argv: readonly string[],
  environment: NodeJS.ProcessEnv,
  workingDirectory: string,
): ImportOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: 'string' },
        file: { type: 'string' },
        url: { type: 'string' },
        table: { type: 'string' },
        'app-key': { type: 'string' },
        'allowed-base-urls': { type: 'string' },
        target: { type: 'string', default: 'local' },
        'persist-to': { type: 'string' },
        config: { type: 'string' },
        binding: { type: 'string', default: DEFAULT_BINDING },
        out: { type: 'string' },
        existing: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        'encryption-key-file': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message} Run with --help for the options.`);
  }
  if (values.help) {
    return 'help';
  }

  const source = requireChoice(values.from, SOURCE_NAMES, '--from');
  const target = requireChoice(values.target, TARGET_NAMES, '--target');
  const path = (value: string) => (isAbsolute(value) ? value : resolve(workingDirectory, value));

  const needsFile = source === 'ace-sqlite' || source === 'jsonl';
  if (needsFile && values.file === undefined) {
    throw new UsageError(`--from ${source} needs --file <path>.`);
  }
  if (!needsFile && values.url === undefined) {
    throw new UsageError(`--from ${source} needs --url <connection URL>.`);
  }
  if (target === 'bulk-file' && (values.out === undefined || values.existing === undefined)) {
    throw new UsageError(
      '--target bulk-file needs --out <file> and --existing <file>, the output of ' +
        `npx wrangler kv key list --remote --binding ${values.binding} --prefix installation: ` +
        '(an empty namespace lists []).',
    );
  }

  const allowList = parseAllowedBaseUrls(values['allowed-base-urls']);
  const { key: encryptionKey, origin: encryptionKeyOrigin } = readEncryptionKey(values['encryption-key-file'], environment, path);
  const oldKeys = environment.CONNECT_ENCRYPTION_OLD_KEYS?.trim() ?? '';

  return {
    source,
    ...(values.file === undefined ? {} : { file: path(values.file) }),
    ...(values.url === undefined ? {} : { url: values.url }),
    table: values.table ?? (source === 'spring-postgres' ? SPRING_DEFAULT_TABLE : ACE_DEFAULT_TABLE),
    ...(values['app-key'] === undefined ? {} : { appKey: values['app-key'] }),
    allowList,
    target,
    ...(values['persist-to'] === undefined ? {} : { persistTo: path(values['persist-to']) }),
    ...(values.config === undefined ? {} : { configPath: path(values.config) }),
    binding: values.binding,
    ...(values.out === undefined ? {} : { out: path(values.out) }),
    ...(values.existing === undefined ? {} : { existingKeysFile: path(values.existing) }),
    dryRun: values['dry-run'],
    force: values.force,
    encryptionKey,
    encryptionKeyOrigin,
    oldEncryptionKeys: oldKeys === '' ? [] : oldKeys.split(','),
  };
}

function requireChoice<T extends string>(value: string | undefined, choices: readonly T[], flag: string): T {
  if (value === undefined) {
    throw new UsageError(`${flag} is required: one of ${choices.join(', ')}.`);
  }
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} "${value}" is not one of ${choices.join(', ')}.`);
  }
  return value as T;
}

function parseAllowedBaseUrls(value: string | undefined): AllowList {
  try {
    return parseAllowList(value);
  } catch (error) {
    throw new UsageError(`--allowed-base-urls: ${(error as Error).message}`);
  }
}

function readEncryptionKey(
  file: string | undefined,
  environment: NodeJS.ProcessEnv,
  path: (value: string) => string,
): { key: string; origin: string } {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(path(file), 'utf8');
    } catch {
      throw new UsageError(`--encryption-key-file ${file} cannot be read.`);
    }
    const key = text.trim();
    if (key === '') {
      throw new UsageError(`--encryption-key-file ${file} is empty.`);
    }
    return { key, origin: '--encryption-key-file' };
  }

  const key = environment.CONNECT_ENCRYPTION_KEY?.trim() ?? '';
  if (key === '') {
    throw new UsageError(
      'CONNECT_ENCRYPTION_KEY is not set. Use the key the worker has (wrangler secret put CONNECT_ENCRYPTION_KEY), ' +
        'from the environment or with --encryption-key-file <path>.',
    );
  }
  return { key, origin: 'CONNECT_ENCRYPTION_KEY' };
}
