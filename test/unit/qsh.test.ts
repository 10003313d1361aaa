/**
 * Known-answer tests for the query string hash: the signed vectors collected
 * from public test suites and the qsh bug cases. Most vectors come from tokens
 * signed by Atlassian's Java library, so they fix the canonical form.
 */
import { describe, expect, it } from 'vitest';
import {
  createCanonicalRequest,
  createQueryStringHash,
  createQueryStringHashCandidates,
  sha256Hex,
} from '../../src/connect/qsh';
import bugCasesJson from '../fixtures/cases/bug-cases.json';
import qshVectorsJson from '../fixtures/cases/qsh-vectors.json';

interface QshVector {
  source: string;
  method: string;
  url: string;
  baseUrl: string;
  canonical: string;
  qsh: string;
}

interface QshRequest {
  method: string;
  url: string;
  baseUrl: string;
}

interface CanonicalResult {
  canonical: string;
  qsh: string;
}

interface QshBugCase {
  id: string;
  kind: string;
  input: { requests: QshRequest[] };
  expected: {
    results: CanonicalResult[];
    mustReject?: (CanonicalResult & { why: string })[];
    alsoAccept?: CanonicalResult[];
    atlassianJwt2_0_3?: (CanonicalResult & { agrees: boolean })[];
  };
}

const qshVectors = qshVectorsJson as QshVector[];
const qshBugCases = (bugCasesJson as unknown as QshBugCase[]).filter((bugCase) => bugCase.kind === 'qsh');

/**
 * Returns a short test name from a vector's source, e.g. `Java "Simple"` or
 * `atlassian-jwt "valueless parameters"`.
 */
function vectorName(vector: QshVector, index: number): string {
  const label = vector.source.split(' :: ').at(-1) ?? vector.source;
  const quoted = /"([^"]+)"/.exec(label)?.[1];
  if (vector.source.startsWith('Atlassian Connect (Java)')) {
    return `${index} Java "${quoted}"`;
  }
  if (vector.source.startsWith('atlassian-jwt')) {
    return `${index} atlassian-jwt "${quoted}"`;
  }
  const row = /row \d+/.exec(label)?.[0];
  return `${index} Bitbucket doc ${row}`;
}

function candidatesOf(request: QshRequest): Promise<string[]> {
  return createQueryStringHashCandidates(request.method, request.url, request.baseUrl);
}

const vectorRows = qshVectors.map((vector, index) => ({ ...vector, name: vectorName(vector, index) }));

describe('qsh known-answer vectors', () => {
  it('covers all 48 vectors', () => {
    expect(vectorRows).toHaveLength(48);
  });

  for (const { name, method, url, baseUrl, canonical, qsh } of vectorRows) {
    it(`vector ${name} canonical`, () => {
      expect(createCanonicalRequest(method, url, baseUrl)).toBe(canonical);
    });

    it(`vector ${name} qsh`, async () => {
      await expect(createQueryStringHash(method, url, baseUrl)).resolves.toBe(qsh);
    });

    it(`vector ${name} first candidate`, async () => {
      const candidates = await createQueryStringHashCandidates(method, url, baseUrl);
      expect(candidates[0]).toBe(qsh);
    });
  }
});

describe('qsh bug cases', () => {
  it('covers the eight qsh cases', () => {
    expect(qshBugCases.map((bugCase) => bugCase.id)).toEqual(['B01', 'B02', 'B04', 'B07', 'B08', 'B10', 'B12', 'B14']);
  });

  for (const { id, input, expected } of qshBugCases) {
    it(`${id} has one result per request`, () => {
      expect(expected.results).toHaveLength(input.requests.length);
    });

    for (const [index, request] of input.requests.entries()) {
      const result = expected.results[index];
      const atlassianJwtForm = expected.atlassianJwt2_0_3?.[index];
      const number = index + 1;

      it(`${id} request ${number} canonical`, () => {
        expect(createCanonicalRequest(request.method, request.url, request.baseUrl)).toBe(result?.canonical);
      });

      it(`${id} request ${number} qsh`, async () => {
        await expect(createQueryStringHash(request.method, request.url, request.baseUrl)).resolves.toBe(result?.qsh);
      });

      it(`${id} request ${number} first candidate`, async () => {
        const candidates = await candidatesOf(request);
        expect(candidates[0]).toBe(result?.qsh);
      });

      if (atlassianJwtForm === undefined) {
        continue;
      }

      it(`${id} request ${number} accepts atlassian-jwt form`, async () => {
        expect(await candidatesOf(request)).toContain(atlassianJwtForm.qsh);
      });

      const agreement = atlassianJwtForm.agrees ? 'agrees with' : 'differs from';
      it(`${id} request ${number} atlassian-jwt ${agreement} primary`, async () => {
        const primary = await createQueryStringHash(request.method, request.url, request.baseUrl);
        expect(primary === atlassianJwtForm.qsh).toBe(atlassianJwtForm.agrees);
      });
    }

    for (const rejected of expected.mustReject ?? []) {
      it(`${id} rejects form with ${rejected.why}`, async () => {
        for (const request of input.requests) {
          expect(await candidatesOf(request)).not.toContain(rejected.qsh);
        }
      });
    }

    for (const accepted of expected.alsoAccept ?? []) {
      it(`${id} also accepts ${accepted.canonical}`, async () => {
        const candidateLists = await Promise.all(input.requests.map(candidatesOf));
        expect(candidateLists.flat()).toContain(accepted.qsh);
      });
    }

    // The fixture's own hashes are checked too, so that a wrong expected value
    // cannot make a mustReject test pass by accident.
    const fixtureForms = new Map<string, string>();
    for (const form of [
      ...expected.results,
      ...(expected.mustReject ?? []),
      ...(expected.alsoAccept ?? []),
      ...(expected.atlassianJwt2_0_3 ?? []),
    ]) {
      fixtureForms.set(form.canonical, form.qsh);
    }
    for (const [canonical, qsh] of fixtureForms) {
      it(`${id} fixture hash of ${canonical}`, async () => {
        await expect(sha256Hex(canonical)).resolves.toBe(qsh);
      });
    }
  }
});
