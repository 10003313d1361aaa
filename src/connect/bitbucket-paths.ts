/**
 * Helpers that build Bitbucket API paths and query strings from untrusted
 * values. A workspace slug, repository slug or braced UUID such as
 * `{01234567-...}` becomes one percent-encoded path segment (`%7B...%7D`), and
 * query values are encoded with encodeURIComponent, because Node's and
 * workerd's fetch send `{`, `}` and `"` in a query unencoded.
 */
import { ConnectError } from './errors';

type QueryValue = string | number | boolean;

/** Query parameters; an undefined value is left out and an array repeats the name. */
export type QueryParameters = Readonly<Record<string, QueryValue | readonly QueryValue[] | undefined>>;

/** Percent-encodes one path segment, so `/`, `?`, `#`, `{` and `}` cannot change the path. */
export function encodePathSegment(value: string | number): string {
  const text = String(value);
  if (text === '' || text === '.' || text === '..') {
    throw new ConnectError('invalid_request', `Invalid path segment ${JSON.stringify(text)}: it must not be empty, "." or "..".`);
  }
  return encodeURIComponent(text);
}

/**
 * Builds a path from a template literal, encoding each interpolated value as
 * one segment: bitbucketPath`/2.0/repositories/${workspace}/${repoUuid}`
 * gives `/2.0/repositories/my-team/%7B0123...%7D`.
 */
export function bitbucketPath(strings: TemplateStringsArray, ...segments: readonly (string | number)[]): string {
  let path = strings[0] ?? '';
  segments.forEach((segment, index) => {
    path += encodePathSegment(segment) + (strings[index + 1] ?? '');
  });
  return path;
}

/** Appends parameters to a path or URL, keeping a query it already has. */
export function withQuery(pathOrUrl: string, query: QueryParameters): string {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) {
      continue;
    }
    const values: readonly QueryValue[] = Array.isArray(value) ? value : [value as QueryValue];
    for (const item of values) {
      pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(item))}`);
    }
  }

  if (pairs.length === 0) {
    return pathOrUrl;
  }
  const fragmentStart = pathOrUrl.indexOf('#');
  const base = fragmentStart === -1 ? pathOrUrl : pathOrUrl.slice(0, fragmentStart);
  const separator = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${separator}${pairs.join('&')}`;
}
