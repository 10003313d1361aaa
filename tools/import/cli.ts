/**
 * `npm run import-installations -- --from <source> ...`: copies the
 * installations of an existing Connect app store into this framework's
 * store. See docs/migrating.md for the migration steps around it.
 */
import { HELP_TEXT, parseImportOptions, UsageError } from './options';
import { runImport } from './run';

/** Exit status when the import could not run at all. */
const EXIT_CANNOT_RUN = 2;

async function main(): Promise<number> {
  // npm run changes into the package directory; INIT_CWD is where the command was typed.
  const workingDirectory = process.env.INIT_CWD ?? process.cwd();
  const options = parseImportOptions(process.argv.slice(2), process.env, workingDirectory);
  if (options === 'help') {
    console.log(HELP_TEXT);
    return 0;
  }

  const summary = await runImport(options, {
    line: (text) => console.log(text),
    warn: (text) => console.error(text),
  });
  return summary.exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`import-installations: ${error.message}`);
    } else {
      // Only the name: messages from drivers and parsers can quote the data they failed on.
      console.error(`import-installations: failed (${error instanceof Error ? error.name : typeof error}).`);
    }
    process.exitCode = EXIT_CANNOT_RUN;
  },
);
