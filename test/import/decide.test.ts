/**
 * The import's pure rules: when a stored record is overwritten, how a
 * spring-boot row becomes a payload, and how stored JSON is read.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson, decide, parseImportMetadata, type ExistingEntry, type ImportMetadata } from '../../tools/import/decide';
import { describeUrl, parseStoredJson, quoteTableName, type PayloadRow, type SourceRow } from '../../tools/import/source';
import { hostRow, UNKNOWN_PRINCIPAL } from '../../tools/import/sources/spring';

const FINGERPRINT = 'a'.repeat(64);
const OTHER_FINGERPRINT = 'b'.repeat(64);

function imported(sourceUpdatedAt: string | null, fingerprint = OTHER_FINGERPRINT): ImportMetadata {
  return { importedFrom: 'spring-postgres', sourceUpdatedAt, importedAt: '2026-03-01T00:00:00.000Z', fingerprint };
}

function payloadContent(row: SourceRow): PayloadRow {
  expect(row.content.kind).toBe('payload');
  return row.content as PayloadRow;
}

function candidate(sourceUpdatedAt?: string) {
  return { fingerprint: FINGERPRINT, sourceUpdatedAt: sourceUpdatedAt === undefined ? undefined : new Date(sourceUpdatedAt) };
}

describe('decide', () => {
  const cases: Array<{ name: string; existing: ExistingEntry | null; source?: string; force?: boolean; action: string }> = [
    { name: 'writes a new installation', existing: null, action: 'write' },
    { name: 'leaves an identical import', existing: { importMetadata: imported(null, FINGERPRINT), updatedAt: undefined }, action: 'unchanged' },
    { name: 'leaves an identical import with --force', existing: { importMetadata: imported(null, FINGERPRINT), updatedAt: undefined }, force: true, action: 'unchanged' },
    { name: 'replaces a changed import without timestamps', existing: { importMetadata: imported(null), updatedAt: undefined }, action: 'write' },
    { name: 'replaces an import of an older row', existing: { importMetadata: imported('2025-01-01T00:00:00Z'), updatedAt: undefined }, source: '2025-02-01T00:00:00Z', action: 'write' },
    { name: 'keeps an import of a newer row', existing: { importMetadata: imported('2025-03-01T00:00:00Z'), updatedAt: undefined }, source: '2025-02-01T00:00:00Z', action: 'keep' },
    { name: 'keeps a worker record without source time', existing: { importMetadata: null, updatedAt: '2025-01-01T00:00:00Z' }, action: 'keep' },
    { name: 'keeps a worker record newer than the row', existing: { importMetadata: null, updatedAt: '2025-03-01T00:00:00Z' }, source: '2025-02-01T00:00:00Z', action: 'keep' },
    { name: 'keeps a worker record of unknown age', existing: { importMetadata: null, updatedAt: undefined }, source: '2025-02-01T00:00:00Z', action: 'keep' },
    { name: 'replaces a worker record older than the row', existing: { importMetadata: null, updatedAt: '2025-01-01T00:00:00Z' }, source: '2025-02-01T00:00:00Z', action: 'write' },
    { name: 'replaces a worker record with --force', existing: { importMetadata: null, updatedAt: '2025-03-01T00:00:00Z' }, force: true, action: 'write' },
    { name: 'fails on an unreadable record', existing: { importMetadata: null, updatedAt: undefined, unreadable: 'bad key.' }, action: 'fail' },
    { name: 'replaces an unreadable record with --force', existing: { importMetadata: null, updatedAt: undefined, unreadable: 'bad key.' }, force: true, action: 'write' },
  ];

  for (const testCase of cases) {
    it(testCase.name, () => {
      expect(decide(testCase.existing, candidate(testCase.source), testCase.force ?? false).action).toBe(testCase.action);
    });
  }

  it('names the timestamps in a keep reason', () => {
    const decision = decide({ importMetadata: null, updatedAt: '2025-03-01T00:00:00.000Z' }, candidate(), false);
    expect(decision).toEqual({
      action: 'keep',
      reason: 'the worker stored this installation at 2025-03-01T00:00:00.000Z after a lifecycle call, and the source row is not known to be newer; --force overwrites it.',
    });
  });
});

describe('parseImportMetadata', () => {
  it('accepts the metadata the import writes', () => {
    expect(parseImportMetadata(imported(null))).toEqual(imported(null));
  });

  it('rejects other metadata', () => {
    expect(parseImportMetadata(null)).toBeNull();
    expect(parseImportMetadata({ importedFrom: 'jsonl' })).toBeNull();
    expect(parseImportMetadata({ ...imported(null), sourceUpdatedAt: 5 })).toBeNull();
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
  });

  it('drops undefined fields', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
  });
});

describe('spring-boot hostRow', () => {
  const row = {
    client_key: 'connection:7',
    shared_secret: 'x'.repeat(32),
    base_url: 'https://bitbucket.org',
    product_type: 'BITBUCKET',
    public_key: null,
    addon_installed: null,
    created_date: new Date('2025-01-01T00:00:00Z'),
    last_modified_date: null,
    service_entitlement_number: 'E-1',
  };

  it('builds an installed payload', () => {
    const result = hostRow(row, 'app-key');
    expect(result.content).toEqual({
      kind: 'payload',
      payload: {
        key: 'app-key',
        principal: UNKNOWN_PRINCIPAL,
        clientKey: 'connection:7',
        sharedSecret: 'x'.repeat(32),
        baseUrl: 'https://bitbucket.org',
        baseApiUrl: 'https://api.bitbucket.org',
        productType: 'bitbucket',
        serviceEntitlementNumber: 'E-1',
      },
      state: 'installed',
      updatedAt: new Date('2025-01-01T00:00:00Z'),
      installedAt: new Date('2025-01-01T00:00:00Z'),
      note: 'principal unknown until the next re-install (spring-boot does not store it)',
    });
  });

  it('marks addon_installed false as uninstalled', () => {
    const content = payloadContent(hostRow({ ...row, addon_installed: false }, 'app-key'));
    expect(content.state).toBe('uninstalled');
  });

  it('keeps a base_api_url column', () => {
    const content = payloadContent(hostRow({ ...row, base_url: 'https://staging.example', base_api_url: 'https://api.staging.example' }, 'app-key'));
    expect((content.payload as { baseApiUrl: string }).baseApiUrl).toBe('https://api.staging.example');
  });

  it('ignores an empty product_type', () => {
    expect(hostRow({ ...row, product_type: null }, 'app-key').content).toEqual({
      kind: 'ignored',
      reason: 'product_type is empty, not bitbucket.',
    });
  });
});

describe('source helpers', () => {
  it('decodes JSON stored as a JSON string', () => {
    expect(parseStoredJson(JSON.stringify(JSON.stringify({ a: 1 })), 'val')).toEqual({ ok: true, value: { a: 1 } });
  });

  it('reports bad JSON without quoting it', () => {
    expect(parseStoredJson('{"sharedSecret": "abc', 'val')).toEqual({ ok: false, reason: 'val is not valid JSON.' });
  });

  it('drops the password and query from a URL', () => {
    expect(describeUrl('postgres://app:secret@db.internal:5432/connect?password=other')).toBe('postgres://app@db.internal:5432/connect');
  });

  it('quotes table names and rejects others', () => {
    expect(quoteTableName('public.atlassian_host')).toBe('"public"."atlassian_host"');
    expect(() => quoteTableName('x"; DROP TABLE y; --')).toThrow('must be a table name');
  });
});
