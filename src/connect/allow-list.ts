/**
 * Host allow-list for every URL the framework calls or accepts from an
 * installed payload. The payload of a first install is trusted without a
 * signature, so a forged one could point baseUrl anywhere; only configured
 * origins are accepted.
 */
import { ConnectError, quoteInput } from './errors';

export const DEFAULT_ALLOWED_BASE_URLS = ['https://bitbucket.org', 'https://api.bitbucket.org'] as const;

/** A parsed, validated set of allowed origins. */
export interface AllowList {
  readonly origins: ReadonlySet<string>;
}

const parsedAllowLists = new Map<string, AllowList>();

/**
 * Parses the comma-separated `ALLOWED_BASE_URLS` value; an empty or missing
 * value gives the default Bitbucket origins. Each entry must be a bare origin.
 */
export function parseAllowList(value: string | undefined): AllowList {
  const text = value?.trim() ?? '';
  const cached = parsedAllowLists.get(text);
  if (cached !== undefined) {
    return cached;
  }

  const entries = text === '' ? [...DEFAULT_ALLOWED_BASE_URLS] : text.split(',').map((entry) => entry.trim());
  const origins = new Set<string>();
  for (const entry of entries) {
    if (entry === '') {
      continue;
    }
    origins.add(parseOriginEntry(entry));
  }

  const allowList: AllowList = { origins };
  parsedAllowLists.set(text, allowList);
  return allowList;
}

function parseOriginEntry(entry: string): string {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new ConnectError('configuration_error', `ALLOWED_BASE_URLS entry "${entry}" is not an absolute URL.`);
  }

  const withoutSlash = entry.endsWith('/') ? entry.slice(0, -1) : entry;
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== withoutSlash.toLowerCase()) {
    throw new ConnectError(
      'configuration_error',
      `ALLOWED_BASE_URLS entry "${entry}" must be an origin such as https://bitbucket.org, with no path.`,
    );
  }
  return url.origin;
}

/**
 * Checks that `url` is an absolute http(s) URL without credentials whose
 * origin is on the allow-list. `field` names the value in the error message.
 */
export function assertAllowedUrl(url: string, allowList: AllowList, field: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectError('invalid_payload', `${field} must be an absolute URL.`);
  }

  if (parsed.username !== '' || parsed.password !== '') {
    throw new ConnectError('invalid_payload', `${field} must not contain credentials.`);
  }
  if (!allowList.origins.has(parsed.origin)) {
    // The allowed origins are not listed: they would tell any caller the deployment's configuration.
    throw new ConnectError(
      'forbidden_host',
      `${field} origin ${quoteInput(parsed.origin)} is not an allowed Bitbucket origin (see ALLOWED_BASE_URLS).`,
    );
  }
  return parsed;
}
