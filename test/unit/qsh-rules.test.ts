/**
 * Rule-by-rule tests of the canonical request beyond the known-answer vectors:
 * methods, paths, base URLs, query encoding and ordering, malformed input and
 * the candidate hashes a verifier accepts.
 */
import { describe, expect, it } from 'vitest';
import { ConnectError } from '../../src/connect/errors';
import {
  createCanonicalRequest,
  createQueryStringHash,
  createQueryStringHashCandidates,
  sha256Hex,
} from '../../src/connect/qsh';

interface CanonicalCase {
  name: string;
  method?: string;
  url: string;
  baseUrl?: string;
  canonical: string;
}

function canonicalOf({ method = 'GET', url, baseUrl }: CanonicalCase): string {
  return createCanonicalRequest(method, url, baseUrl);
}

const METHOD_CASES: CanonicalCase[] = [
  { name: 'lower case', method: 'get', url: '/config', canonical: 'GET&/config&' },
  { name: 'mixed case', method: 'pOsT', url: '/config', canonical: 'POST&/config&' },
  { name: 'upper case', method: 'DELETE', url: '/config', canonical: 'DELETE&/config&' },
];

const PATH_CASES: CanonicalCase[] = [
  { name: 'root', url: '/', canonical: 'GET&/&' },
  { name: 'absolute URL without path', url: 'https://app.example.com', canonical: 'GET&/&' },
  { name: 'absolute URL with only a query', url: 'https://app.example.com?a=1', canonical: 'GET&/&a=1' },
  { name: 'query without path', url: '?a=1', canonical: 'GET&/&a=1' },
  { name: 'port and user info', url: 'https://user@app.example.com:8443/panel', canonical: 'GET&/panel&' },
  { name: 'missing leading slash', url: 'config?tab=1', canonical: 'GET&/config&tab=1' },
  { name: 'one trailing slash removed', url: '/config/', canonical: 'GET&/config&' },
  { name: 'only one trailing slash removed', url: '/config//', canonical: 'GET&/config/&' },
  { name: 'double slash root', url: '//', canonical: 'GET&/&' },
  { name: 'fragment ignored', url: '/panel?a=1#section', canonical: 'GET&/panel&a=1' },
  { name: 'space decoded', url: '/a%20b', canonical: 'GET&/a b&' },
  { name: 'lower-case hex decoded', url: '/%7e/caf%c3%a9', canonical: 'GET&/~/café&' },
  { name: 'plus kept literally', url: '/a+b', canonical: 'GET&/a+b&' },
  { name: 'encoded slash decoded', url: '/a%2Fb', canonical: 'GET&/a/b&' },
  { name: 'encoded trailing slash removed', url: '/a%2F', canonical: 'GET&/a&' },
  { name: 'literal ampersand', url: '/R&D', canonical: 'GET&/R%26D&' },
  { name: 'encoded ampersand', url: '/R%26D', canonical: 'GET&/R%26D&' },
  { name: 'encoded percent', url: '/100%25', canonical: 'GET&/100%&' },
  { name: 'encoded question mark', url: '/what%3F?a=1', canonical: 'GET&/what?&a=1' },
  { name: 'dot segments kept', url: '/a/../b', canonical: 'GET&/a/../b&' },
];

const BASE_URL_CASES: CanonicalCase[] = [
  { name: 'base path removed', url: '/base/panel', baseUrl: 'https://app.example.com/base', canonical: 'GET&/panel&' },
  {
    name: 'base with trailing slash',
    url: '/base/panel',
    baseUrl: 'https://app.example.com/base/',
    canonical: 'GET&/panel&',
  },
  { name: 'request equal to base', url: '/base', baseUrl: 'https://app.example.com/base', canonical: 'GET&/&' },
  {
    name: 'request equal to base with slash',
    url: '/base/?a=1',
    baseUrl: 'https://app.example.com/base',
    canonical: 'GET&/&a=1',
  },
  {
    name: 'segment boundary kept',
    url: '/basement/panel',
    baseUrl: 'https://app.example.com/base',
    canonical: 'GET&/basement/panel&',
  },
  {
    name: 'multi-segment base',
    url: '/a/b/c',
    baseUrl: 'https://app.example.com/a/b',
    canonical: 'GET&/c&',
  },
  {
    name: 'partial multi-segment base',
    url: '/a/bc',
    baseUrl: 'https://app.example.com/a/b',
    canonical: 'GET&/a/bc&',
  },
  {
    name: 'base only at the start',
    url: '/x/base/panel',
    baseUrl: 'https://app.example.com/base',
    canonical: 'GET&/x/base/panel&',
  },
  { name: 'root base', url: '/panel', baseUrl: 'https://app.example.com/', canonical: 'GET&/panel&' },
  { name: 'base without path', url: '/panel', baseUrl: 'https://app.example.com', canonical: 'GET&/panel&' },
  { name: 'empty base string', url: '/panel', baseUrl: '', canonical: 'GET&/panel&' },
  {
    name: 'absolute request URL',
    url: 'https://app.example.com/base/panel?a=1',
    baseUrl: 'https://app.example.com/base',
    canonical: 'GET&/panel&a=1',
  },
  {
    name: 'encoded base segment',
    url: '/my%20app/panel',
    baseUrl: 'https://app.example.com/my%20app',
    canonical: 'GET&/panel&',
  },
  {
    name: 'base with unencoded space',
    url: '/my%20app/panel',
    baseUrl: 'https://app.example.com/my app',
    canonical: 'GET&/panel&',
  },
  {
    name: 'tilde matches encoded tilde',
    url: '/%7Eapp/panel',
    baseUrl: 'https://app.example.com/~app',
    canonical: 'GET&/panel&',
  },
  {
    name: 'encoded slash is no boundary',
    url: '/base%2Fpanel',
    baseUrl: 'https://app.example.com/base',
    canonical: 'GET&/base/panel&',
  },
  {
    name: 'query of base ignored',
    url: '/base/panel',
    baseUrl: 'https://app.example.com/base?x=1',
    canonical: 'GET&/panel&',
  },
];

const ENCODING_CASES: CanonicalCase[] = [
  { name: 'plus is a space', url: '/p?q=a+b', canonical: 'GET&/p&q=a%20b' },
  { name: 'encoded space', url: '/p?q=a%20b', canonical: 'GET&/p&q=a%20b' },
  { name: 'encoded plus', url: '/p?q=a%2Bb', canonical: 'GET&/p&q=a%2Bb' },
  { name: 'asterisk', url: '/p?q=*', canonical: 'GET&/p&q=%2A' },
  { name: 'reserved punctuation', url: "/p?q=!'()", canonical: 'GET&/p&q=%21%27%28%29' },
  { name: 'tilde kept', url: '/p?q=~', canonical: 'GET&/p&q=~' },
  { name: 'encoded tilde', url: '/p?q=%7E', canonical: 'GET&/p&q=~' },
  { name: 'lower-case hex', url: '/p?q=%7e%c3%a9', canonical: 'GET&/p&q=~%C3%A9' },
  { name: 'unencoded unicode', url: '/p?q=é', canonical: 'GET&/p&q=%C3%A9' },
  { name: 'four-byte UTF-8', url: '/p?q=%F0%9F%98%80', canonical: 'GET&/p&q=%F0%9F%98%80' },
  { name: 'equals sign in value', url: '/p?q=a=b', canonical: 'GET&/p&q=a%3Db' },
  { name: 'question mark in query', url: '/p?q=a?b', canonical: 'GET&/p&q=a%3Fb' },
  { name: 'comma in value', url: '/p?q=a,b', canonical: 'GET&/p&q=a%2Cb' },
  { name: 'reserved name', url: '/p?page%5Bsize%5D=1', canonical: 'GET&/p&page%5Bsize%5D=1' },
  { name: 'unreserved characters kept', url: '/p?Az09-._~=Az09-._~', canonical: 'GET&/p&Az09-._~=Az09-._~' },
];

const PARAMETER_CASES: CanonicalCase[] = [
  { name: 'empty query', url: '/p?', canonical: 'GET&/p&' },
  { name: 'only separators', url: '/p?&&', canonical: 'GET&/p&' },
  { name: 'empty pairs skipped', url: '/p?a=1&&b=2', canonical: 'GET&/p&a=1&b=2' },
  { name: 'name without equals sign', url: '/p?a', canonical: 'GET&/p&a=' },
  { name: 'empty and filled values', url: '/p?a=&a=x', canonical: 'GET&/p&a=,x' },
  { name: 'empty name kept', url: '/p?=x&a=1', canonical: 'GET&/p&=x&a=1' },
  { name: 'repeated identical values', url: '/p?a=1&a=1', canonical: 'GET&/p&a=1,1' },
  { name: 'names grouped after decoding', url: '/p?a+b=2&a%20b=1', canonical: 'GET&/p&a%20b=1,2' },
  { name: 'groups ordered by encoded name', url: '/p?b=1&a=2&B=3', canonical: 'GET&/p&B=3&a=2&b=1' },
  { name: 'values ordered by decoded form', url: '/p?v=%C3%A9&v=z', canonical: 'GET&/p&v=z,%C3%A9' },
  {
    // U+1F600 is stored as the surrogate pair D83D DE00, which sorts before
    // U+FF61 in UTF-16 order although its code point is larger.
    name: 'values ordered by UTF-16 code units',
    url: '/p?v=%EF%BD%A1&v=%F0%9F%98%80',
    canonical: 'GET&/p&v=%F0%9F%98%80,%EF%BD%A1',
  },
  { name: 'prototype name', url: '/p?__proto__=1&constructor=2', canonical: 'GET&/p&__proto__=1&constructor=2' },
  { name: 'jwt dropped', url: '/p?jwt=abc&a=1', canonical: 'GET&/p&a=1' },
  { name: 'every jwt dropped', url: '/p?jwt=abc&jwt=def', canonical: 'GET&/p&' },
  { name: 'encoded jwt name dropped', url: '/p?j%77t=abc&a=1', canonical: 'GET&/p&a=1' },
  { name: 'jwt value never decoded', url: '/p?jwt=%zz&a=1', canonical: 'GET&/p&a=1' },
  { name: 'upper-case JWT kept', url: '/p?JWT=abc', canonical: 'GET&/p&JWT=abc' },
  { name: 'jwt prefix kept', url: '/p?jwt2=abc', canonical: 'GET&/p&jwt2=abc' },
];

describe('createCanonicalRequest', () => {
  it.each(METHOD_CASES)('method $name', (testCase) => {
    expect(canonicalOf(testCase)).toBe(testCase.canonical);
  });

  it.each(PATH_CASES)('path $name', (testCase) => {
    expect(canonicalOf(testCase)).toBe(testCase.canonical);
  });

  it.each(BASE_URL_CASES)('baseUrl $name', (testCase) => {
    expect(canonicalOf(testCase)).toBe(testCase.canonical);
  });

  it.each(ENCODING_CASES)('query encoding $name', (testCase) => {
    expect(canonicalOf(testCase)).toBe(testCase.canonical);
  });

  it.each(PARAMETER_CASES)('query parameters $name', (testCase) => {
    expect(canonicalOf(testCase)).toBe(testCase.canonical);
  });

  it('same result for raw and absolute URL', () => {
    expect(createCanonicalRequest('GET', 'https://app.example.com/p?b=2&a=1')).toBe(
      createCanonicalRequest('GET', '/p?b=2&a=1'),
    );
  });
});

const MALFORMED_QUERY_CASES = [
  { name: 'truncated UTF-8 sequence', url: '/p?q=%E0%A4%A', message: /value of query parameter "q"/ },
  { name: 'non-hex escape', url: '/p?q=%zz', message: /value of query parameter "q"/ },
  { name: 'lone percent sign', url: '/p?q=100%', message: /value of query parameter "q"/ },
  { name: 'overlong UTF-8', url: '/p?q=%C0%AF', message: /value of query parameter "q"/ },
  { name: 'encoded surrogate', url: '/p?q=%ED%A0%80', message: /value of query parameter "q"/ },
  { name: 'invalid UTF-8 byte', url: '/p?q=%FF', message: /value of query parameter "q"/ },
  { name: 'malformed name', url: '/p?%zz=1', message: /name of query parameter "%zz"/ },
  { name: 'malformed valueless name', url: '/p?a%=', message: /name of query parameter "a%"/ },
];

const MALFORMED_PATH_CASES = [
  { name: 'non-hex escape', url: '/files/%zz' },
  { name: 'truncated UTF-8 sequence', url: '/files/%E0%A4%A' },
  { name: 'lone percent sign', url: '/files/100%' },
];

describe('malformed request input', () => {
  it.each(MALFORMED_QUERY_CASES)('query $name throws ConnectError', ({ url }) => {
    expect(() => createCanonicalRequest('GET', url)).toThrow(ConnectError);
  });

  it.each(MALFORMED_QUERY_CASES)('query $name rejects as invalid_request', async ({ url }) => {
    await expect(createQueryStringHash('GET', url)).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
  });

  it.each(MALFORMED_QUERY_CASES)('query $name names the parameter', async ({ url, message }) => {
    await expect(createQueryStringHash('GET', url)).rejects.toThrow(message);
  });

  it.each(MALFORMED_PATH_CASES)('path $name rejects as invalid_request', async ({ url }) => {
    await expect(createQueryStringHash('GET', url)).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
  });

  it.each(MALFORMED_PATH_CASES)('path $name names the path', async ({ url }) => {
    await expect(createQueryStringHash('GET', url)).rejects.toThrow(/request path/);
  });

  it('malformed path after base removal', async () => {
    await expect(
      createQueryStringHash('GET', '/base/%zz', 'https://app.example.com/base'),
    ).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('candidates reject malformed query', async () => {
    await expect(createQueryStringHashCandidates('GET', '/p?q=%zz')).rejects.toMatchObject({
      code: 'invalid_request',
    });
  });

  it('unpaired surrogate rejects', async () => {
    await expect(createQueryStringHash('GET', '/p?q=\uD800')).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('message omits parameter value', async () => {
    await expect(createQueryStringHash('GET', '/p?secret=s3cr3t%zz')).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('s3cr3t') }),
    );
  });

  it('message truncates long names', async () => {
    const longName = `%zz${'n'.repeat(500)}`;
    await expect(createQueryStringHash('GET', `/p?${longName}=1`)).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('n'.repeat(100)) }),
    );
  });
});

describe('invalid baseUrl', () => {
  it.each(['not a url', '/base', 'ftp://app.example.com/base', 'https://app.example.com/%zz'])(
    'baseUrl %j rejects as configuration_error',
    async (baseUrl) => {
      await expect(createQueryStringHash('GET', '/panel', baseUrl)).rejects.toMatchObject({
        code: 'configuration_error',
      });
    },
  );
});

describe('createQueryStringHashCandidates', () => {
  it('one candidate when forms agree', async () => {
    await expect(createQueryStringHashCandidates('GET', '/panel?b=2&a=1')).resolves.toHaveLength(1);
  });

  it('raw path form for encoded paths', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/a%20b?x=1');
    expect(candidates).toEqual([await sha256Hex('GET&/a b&x=1'), await sha256Hex('GET&/a%20b&x=1')]);
  });

  it('decoded-name order when it differs', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/list?pageSize=5&page%5Bsize%5D=10');
    expect(candidates).toEqual([
      await sha256Hex('GET&/list&page%5Bsize%5D=10&pageSize=5'),
      await sha256Hex('GET&/list&pageSize=5&page%5Bsize%5D=10'),
    ]);
  });

  it('three candidates when both differ', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/a%20b?pageSize=5&page%5Bsize%5D=10');
    expect(candidates).toEqual([
      await sha256Hex('GET&/a b&page%5Bsize%5D=10&pageSize=5'),
      await sha256Hex('GET&/a%20b&page%5Bsize%5D=10&pageSize=5'),
      await sha256Hex('GET&/a%20b&pageSize=5&page%5Bsize%5D=10'),
    ]);
  });

  it('raw path form keeps base removal', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/base/a%20b', 'https://app.example.com/base');
    expect(candidates).toContain(await sha256Hex('GET&/a%20b&'));
  });

  it('no form for a different method', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/a%20b?pageSize=5&page%5Bsize%5D=10');
    expect(candidates).not.toContain(await createQueryStringHash('POST', '/a%20b?pageSize=5&page%5Bsize%5D=10'));
  });

  it('no form with the token parameter', async () => {
    const candidates = await createQueryStringHashCandidates('GET', '/a%20b?jwt=abc');
    expect(candidates).not.toContain(await sha256Hex('GET&/a%20b&jwt=abc'));
  });
});

describe('sha256Hex', () => {
  it('hashes the empty string', async () => {
    await expect(sha256Hex('')).resolves.toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashes ASCII text', async () => {
    await expect(sha256Hex('abc')).resolves.toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes text as UTF-8', async () => {
    await expect(sha256Hex('é')).resolves.toBe('4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
  });

  it('qsh hashes the canonical request', async () => {
    const url = '/caf%C3%A9?b=2&a=1';
    await expect(createQueryStringHash('GET', url)).resolves.toBe(
      await sha256Hex(createCanonicalRequest('GET', url)),
    );
  });
});
