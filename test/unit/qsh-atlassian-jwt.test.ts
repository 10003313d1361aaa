/**
 * Cross-checks against the npm package atlassian-jwt 2.0.3, an independent
 * implementation that Connect apps on Node sign and verify with. Where the two
 * canonical forms agree the hashes must match, and every hash it computes for a
 * well-formed request must be one of our candidates.
 */
import * as atlassianJwt from 'atlassian-jwt';
import { describe, expect, it } from 'vitest';
import {
  createCanonicalRequest,
  createQueryStringHash,
  createQueryStringHashCandidates,
} from '../../src/connect/qsh';
import qshVectorsJson from '../fixtures/cases/qsh-vectors.json';

interface QshVector {
  method: string;
  url: string;
  baseUrl: string;
  canonical: string;
}

function atlassianJwtHash(method: string, url: string, baseUrl = ''): string {
  return atlassianJwt.createQueryStringHash(atlassianJwt.fromMethodAndUrl(method, url), false, baseUrl);
}

// atlassian-jwt parses absolute URLs with Node's legacy url.parse, which
// escapes `'` in the path, so vectors with a `'` in an absolute URL differ.
const comparableVectors = (qshVectorsJson as QshVector[]).filter(
  (vector) => !(vector.url.includes("'") && vector.url.includes('://')),
);

describe('atlassian-jwt 2.0.3 agreement', () => {
  it('leaves out one vector', () => {
    expect(comparableVectors).toHaveLength(47);
  });

  it.each(comparableVectors)('vector $canonical same qsh', async ({ method, url, baseUrl, canonical }) => {
    expect(createCanonicalRequest(method, url, baseUrl)).toBe(canonical);
    await expect(createQueryStringHash(method, url, baseUrl)).resolves.toBe(atlassianJwtHash(method, url, baseUrl));
  });
});

const CANDIDATE_URLS = [
  '/files/Release%20Notes%20(v2).pdf?x=1',
  '/list?pageSize=5&page%5Bsize%5D=10&alpha=2&Zeta=1',
  '/a%20b?pageSize=5&page%5Bsize%5D=10',
  '/p?%C3%A9=1&z=2',
  '/p?%7E=1&_=2',
  '/p?=x&a=1',
  '/p?a&b=&b=x&jwt=token',
  '/p?q=state+%3D+%22OPEN%22&q=%E5%AE%AE',
  '/config/?tab=general',
];

describe('atlassian-jwt 2.0.3 hashes among candidates', () => {
  it.each(CANDIDATE_URLS)('request %s', async (url) => {
    const candidates = await createQueryStringHashCandidates('GET', url);
    expect(candidates).toContain(atlassianJwtHash('GET', url));
  });
});

describe('atlassian-jwt 2.0.3 known differences', () => {
  // atlassian-jwt removes the base path as a plain string prefix, which turns
  // `/basement` into `/ment` for base `/base`.
  it('base path without segment boundary', async () => {
    const url = '/basement/panel';
    const baseUrl = 'https://app.example.com/base';
    const candidates = await createQueryStringHashCandidates('GET', url, baseUrl);
    expect(candidates).not.toContain(atlassianJwtHash('GET', url, baseUrl));
  });
});
