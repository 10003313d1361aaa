/**
 * Query string hash (qsh): the claim that binds a Connect JWT to one HTTP
 * method, path and query. It is the lowercase hex SHA-256 of the UTF-8
 * canonical request `METHOD&path&query`.
 * https://developer.atlassian.com/cloud/bitbucket/query-string-hash/
 *
 * The canonical form follows Atlassian's Java reference implementation, whose
 * signed test vectors the unit tests check. Only Web-standard APIs are used, so
 * the module runs in workerd and in Node 20 alike.
 */
import { ConnectError } from './errors';

/** Separator between the method, path and query of a canonical request. */
const CANONICAL_SEPARATOR = '&';

/** Escaped form of a `&` inside the path, so that it cannot pass for a separator. */
const ENCODED_CANONICAL_SEPARATOR = '%26';

/** Query parameter that carries the token itself and is never hashed. */
const JWT_PARAMETER_NAME = 'jwt';

/** Maximum length of request input quoted in an error message, in characters. */
const MAX_QUOTED_INPUT_LENGTH = 64;

/** Scheme and authority of an absolute URL, e.g. `https://example.com:8443`. */
const SCHEME_AND_AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** A UTF-16 surrogate without its partner, which has no UTF-8 encoding. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Characters that encodeURIComponent keeps but RFC 3986 does not list as unreserved. */
const RESERVED_KEPT_BY_ENCODE_URI_COMPONENT = /[!'()*]/g;

const utf8Encoder = new TextEncoder();

/** One query parameter name with all of its values. */
interface QueryParameter {
  /** Percent-decoded name. */
  readonly name: string;
  /** Name after RFC 3986 percent-encoding. */
  readonly encodedName: string;
  /** Percent-encoded values, ordered by their decoded forms. */
  readonly encodedValues: readonly string[];
}

/** A request split into the parts that the canonical forms are built from. */
interface ParsedRequest {
  /** Upper-case method. */
  readonly method: string;
  /** Path relative to the base URL, percent-decoded. */
  readonly decodedPath: string;
  /** Path relative to the base URL, exactly as received. */
  readonly rawPath: string;
  readonly parameters: readonly QueryParameter[];
}

/**
 * Builds the canonical request that the qsh is computed from.
 *
 * `url` is an absolute URL or a path with an optional query string, taken as
 * received (not decoded), e.g. the `Request.url` a worker receives. A fragment is
 * ignored. `baseUrl` is an absolute http or https URL, and the empty string
 * means none. Its path is removed from the start of the request path only at
 * a segment boundary, so base `/base` leaves `/basement` alone. A trailing
 * slash on the base path makes no difference.
 *
 * The path is percent-decoded, as Java's `URI.getPath()` does, so `%2F` becomes
 * `/`. An empty path becomes `/`, one trailing `/` is removed and a literal `&`
 * is written as `%26`. The query drops every parameter whose decoded name is
 * exactly `jwt`, groups values by decoded name, sorts each group's decoded
 * values, percent-encodes names and values (RFC 3986 unreserved characters
 * stay) and orders the groups by encoded name.
 *
 * Throws a `ConnectError` with code `invalid_request` when the path or the
 * query contains malformed percent-encoding or the URL contains an unpaired
 * UTF-16 surrogate, and `configuration_error` when `baseUrl` is not an
 * absolute http or https URL.
 */
export function createCanonicalRequest(method: string, url: string, baseUrl?: string): string {
  const request = parseRequest(method, url, baseUrl);
  return formatCanonicalRequest(request.method, request.decodedPath, sortByEncodedName(request.parameters));
}

/** Computes the qsh claim of a request. Arguments and errors as for `createCanonicalRequest`. */
export async function createQueryStringHash(method: string, url: string, baseUrl?: string): Promise<string> {
  return sha256Hex(createCanonicalRequest(method, url, baseUrl));
}

/**
 * Computes every qsh that a verifier accepts for a request, the one from
 * `createQueryStringHash` first and then the distinct hashes of two
 * alternative canonical forms:
 * - the path as received instead of percent-decoded, for signers that hash the
 *   raw path;
 * - the raw path with the parameter groups ordered by decoded instead of
 *   encoded name, which is what the npm package `atlassian-jwt` 2.0.3 produces.
 *
 * The parameter order alone never changes which request a form describes, but
 * mixing path forms does: a token signed for `/a%2520b` (decoded `/a%20b`) also
 * passes for `/a%20b` (raw `/a%20b`), two paths that differ by one level of
 * percent-encoding.
 */
export async function createQueryStringHashCandidates(
  method: string,
  url: string,
  baseUrl?: string,
): Promise<string[]> {
  const request = parseRequest(method, url, baseUrl);
  const byEncodedName = sortByEncodedName(request.parameters);

  // NOTE: Which path form Bitbucket Cloud signs is unverified. Atlassian's Java
  // reference decodes the path and atlassian-jwt 2.0.3 does not.
  const canonicalForms = [
    formatCanonicalRequest(request.method, request.decodedPath, byEncodedName),
    formatCanonicalRequest(request.method, request.rawPath, byEncodedName),
    formatCanonicalRequest(request.method, request.rawPath, sortByDecodedName(request.parameters)),
  ];

  const distinctForms = [...new Set(canonicalForms)];
  return Promise.all(distinctForms.map(sha256Hex));
}

/** Computes the lowercase hex SHA-256 digest of the UTF-8 encoding of `text`. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', utf8Encoder.encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function parseRequest(method: string, url: string, baseUrl: string | undefined): ParsedRequest {
  // Checked once here, because encodeURIComponent throws on such a character
  // and TextEncoder would silently replace it.
  if (UNPAIRED_SURROGATE.test(url)) {
    throw new ConnectError('invalid_request', 'Invalid request URL: it contains an unpaired UTF-16 surrogate.');
  }

  const { path, query } = splitUrl(url);
  const rawPath = removeBasePath(path, basePathSegments(baseUrl));
  const decodedPath = decodePercentEncoding(rawPath);
  if (decodedPath === undefined) {
    throw new ConnectError(
      'invalid_request',
      `Invalid percent-encoding in the request path ${quoteInput(rawPath)}. Encode a literal "%" as %25.`,
    );
  }

  return {
    method: method.toUpperCase(),
    decodedPath,
    rawPath,
    parameters: parseQuery(query),
  };
}

/** Splits a raw URL into a path that is empty or starts with `/`, and the query without `?`. */
function splitUrl(url: string): { path: string; query: string } {
  const fragmentStart = url.indexOf('#');
  let rest = fragmentStart === -1 ? url : url.slice(0, fragmentStart);

  const schemeAndAuthority = SCHEME_AND_AUTHORITY.exec(rest);
  if (schemeAndAuthority !== null) {
    rest = rest.slice(schemeAndAuthority[0].length);
  }

  const queryStart = rest.indexOf('?');
  const path = queryStart === -1 ? rest : rest.slice(0, queryStart);
  const query = queryStart === -1 ? '' : rest.slice(queryStart + 1);

  if (path === '' || path.startsWith('/')) {
    return { path, query };
  }
  return { path: `/${path}`, query };
}

/** Returns the decoded segments of the base URL's path, without a trailing empty segment. */
function basePathSegments(baseUrl: string | undefined): string[] {
  if (baseUrl === undefined || baseUrl === '') {
    return [];
  }

  const invalidBaseUrl = new ConnectError(
    'configuration_error',
    `Invalid baseUrl ${quoteInput(baseUrl)}: expected an absolute http or https URL such as https://app.example.com/base.`,
  );
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch (error) {
    if (error instanceof TypeError) {
      throw invalidBaseUrl;
    }
    throw error;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw invalidBaseUrl;
  }

  const pathname = parsed.pathname.endsWith('/') ? parsed.pathname.slice(0, -1) : parsed.pathname;
  if (pathname === '') {
    return [];
  }

  return pathname
    .split('/')
    .slice(1)
    .map((segment) => {
      const decoded = decodePercentEncoding(segment);
      if (decoded === undefined) {
        throw invalidBaseUrl;
      }
      return decoded;
    });
}

/**
 * Removes the base path from the start of a raw path when every base segment
 * equals the request segment at its position. Segments are compared decoded,
 * so `%7E` and `~` match, but only a literal `/` separates segments.
 */
function removeBasePath(path: string, baseSegments: readonly string[]): string {
  if (baseSegments.length === 0 || path === '') {
    return path;
  }

  // The path starts with `/`, so the first element is empty.
  const segments = path.split('/').slice(1);
  if (segments.length < baseSegments.length) {
    return path;
  }

  for (const [index, baseSegment] of baseSegments.entries()) {
    const segment = segments[index] ?? '';
    if (decodePercentEncoding(segment) !== baseSegment) {
      return path;
    }
  }

  const remainder = segments.slice(baseSegments.length);
  return remainder.length === 0 ? '' : `/${remainder.join('/')}`;
}

/** Parses a raw query into parameter groups, dropping the token parameter. */
function parseQuery(query: string): QueryParameter[] {
  const valuesByName = new Map<string, string[]>();

  // An empty pair (`a=1&&b=2`) carries nothing. A pair without `=` has an
  // empty value. A pair with an empty name (`=x`) is kept, as URLSearchParams
  // and atlassian-jwt 2.0.3 keep it. NOTE: Whether Bitbucket's signer keeps
  // such a pair is unverified.
  for (const pair of query.split('&')) {
    if (pair === '') {
      continue;
    }

    const equalsIndex = pair.indexOf('=');
    const rawName = equalsIndex === -1 ? pair : pair.slice(0, equalsIndex);
    const rawValue = equalsIndex === -1 ? '' : pair.slice(equalsIndex + 1);

    const name = decodeFormComponent(rawName);
    if (name === undefined) {
      throw new ConnectError(
        'invalid_request',
        `Invalid percent-encoding in the name of query parameter ${quoteInput(rawName)}. Encode a literal "%" as %25.`,
      );
    }
    // The token's value is skipped before decoding, so a malformed token cannot fail the hash.
    if (name === JWT_PARAMETER_NAME) {
      continue;
    }

    const value = decodeFormComponent(rawValue);
    if (value === undefined) {
      throw new ConnectError(
        'invalid_request',
        `Invalid percent-encoding in the value of query parameter ${quoteInput(name)}. Encode a literal "%" as %25.`,
      );
    }

    const values = valuesByName.get(name);
    if (values === undefined) {
      valuesByName.set(name, [value]);
    } else {
      values.push(value);
    }
  }

  return Array.from(valuesByName, ([name, values]) => ({
    name,
    encodedName: encodeRfc3986(name),
    encodedValues: values.sort(compareCodeUnits).map(encodeRfc3986),
  }));
}

function sortByEncodedName(parameters: readonly QueryParameter[]): QueryParameter[] {
  return [...parameters].sort((left, right) => compareCodeUnits(left.encodedName, right.encodedName));
}

function sortByDecodedName(parameters: readonly QueryParameter[]): QueryParameter[] {
  return [...parameters].sort((left, right) => compareCodeUnits(left.name, right.name));
}

function formatCanonicalRequest(method: string, path: string, parameters: readonly QueryParameter[]): string {
  const query = parameters
    .map((parameter) => `${parameter.encodedName}=${parameter.encodedValues.join(',')}`)
    .join(CANONICAL_SEPARATOR);
  return [method, canonicalizePath(path), query].join(CANONICAL_SEPARATOR);
}

/** Applies the path rules to a relative path that is empty or starts with `/`. */
function canonicalizePath(path: string): string {
  const withoutTrailingSlash = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const nonEmpty = withoutTrailingSlash === '' ? '/' : withoutTrailingSlash;
  return nonEmpty.replaceAll(CANONICAL_SEPARATOR, ENCODED_CANONICAL_SEPARATOR);
}

/**
 * Orders strings by UTF-16 code units, as Java's `String.compareTo` and the
 * default `Array.prototype.sort` do. For the ASCII-only encoded names this is
 * code point order.
 */
function compareCodeUnits(left: string, right: string): number {
  if (left < right) {
    return -1;
  }
  return left > right ? 1 : 0;
}

/** Percent-encodes everything except the RFC 3986 unreserved characters `A-Z a-z 0-9 - . _ ~`. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    RESERVED_KEPT_BY_ENCODE_URI_COMPONENT,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Decodes a form-encoded query component, where `+` is a space. */
function decodeFormComponent(text: string): string | undefined {
  return decodePercentEncoding(text.replaceAll('+', ' '));
}

/**
 * Decodes `%XX` escapes as UTF-8. Returns undefined for a malformed escape
 * (`%zz`, a lone `%`) or bytes that are not valid UTF-8 (`%E0%A4%A`, `%C0%AF`).
 */
function decodePercentEncoding(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    if (error instanceof URIError) {
      return undefined;
    }
    throw error;
  }
}

/** Quotes request input for an error message, cut to a bounded length. */
function quoteInput(text: string): string {
  const excerpt = text.length > MAX_QUOTED_INPUT_LENGTH ? `${text.slice(0, MAX_QUOTED_INPUT_LENGTH)}...` : text;
  return JSON.stringify(excerpt);
}
