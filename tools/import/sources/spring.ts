/**
 * atlassian-connect-spring-boot's JPA store: table `atlassian_host`, one row
 * per host, created by its Liquibase changelog. Changeset 1.0.1 creates
 * client_key, public_key, shared_secret, base_url, product_type,
 * description, service_entitlement_number, addon_installed, created_date,
 * last_modified_date, created_by and last_modified_by. Columns that later
 * releases add, such as oauth_client_id, are kept as extra fields.
 *
 * The table keeps neither `baseApiUrl` nor `principal`, so:
 * - baseApiUrl is derived from base_url: https://bitbucket.org maps to
 *   https://api.bitbucket.org, the only pair Bitbucket Cloud uses. Another
 *   base_url makes the row invalid unless the table has a base_api_url column.
 * - principal gets the nil UUID with type "unknown" until Bitbucket's next
 *   re-install sends the real one.
 */
import pg from 'pg';
import { describeUrl, quoteTableName, type Source, type SourceRow } from '../source';

export const SPRING_DEFAULT_TABLE = 'atlassian_host';

/** Bitbucket Cloud's product origin and the API origin that belongs to it. */
const BITBUCKET_ORIGIN = 'https://bitbucket.org';
const BITBUCKET_API_ORIGIN = 'https://api.bitbucket.org';

/** Stands in for the workspace until a re-install sends it; spring-boot never stored it. */
export const UNKNOWN_PRINCIPAL = { uuid: '{00000000-0000-0000-0000-000000000000}', type: 'unknown' } as const;

/** Columns whose names differ from the payload field they contain. */
const PAYLOAD_FIELD_BY_COLUMN: Readonly<Record<string, string>> = {
  client_key: 'clientKey',
  shared_secret: 'sharedSecret',
  base_url: 'baseUrl',
  base_api_url: 'baseApiUrl',
  product_type: 'productType',
  public_key: 'publicKey',
};

/** Bookkeeping columns of the table itself; they are not payload fields. */
const TABLE_COLUMNS = new Set(['addon_installed', 'created_date', 'last_modified_date', 'created_by', 'last_modified_by']);

export async function openSpringPostgres(url: string, table: string, appKey: string): Promise<Source> {
  const tableName = quoteTableName(table);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    description: `atlassian-connect-spring-boot PostgreSQL store ${describeUrl(url)}, table ${table}`,
    async *rows() {
      const result = await client.query<Record<string, unknown>>(`SELECT * FROM ${tableName} ORDER BY client_key`);
      for (const row of result.rows) {
        yield hostRow(row, appKey, table);
      }
    },
    async close() {
      await client.end();
    },
  };
}

/** Turns one atlassian_host row into an installed payload; exported for unit tests. */
export function hostRow(row: Record<string, unknown>, appKey: string, table = SPRING_DEFAULT_TABLE): SourceRow {
  const clientKey = typeof row.client_key === 'string' ? row.client_key : undefined;
  const location = `${table} client_key ${clientKey ?? '(empty)'}`;

  const productType = typeof row.product_type === 'string' ? row.product_type.toLowerCase() : '';
  if (productType !== 'bitbucket') {
    const productTypeText = productType === '' ? 'empty' : `"${productType}"`;
    return { location, clientKey, content: { kind: 'ignored', reason: `product_type is ${productTypeText}, not bitbucket.` } };
  }

  const payload: Record<string, unknown> = { key: appKey, principal: UNKNOWN_PRINCIPAL };
  for (const [column, value] of Object.entries(row)) {
    if (value === null || value === undefined || TABLE_COLUMNS.has(column)) {
      continue;
    }
    payload[PAYLOAD_FIELD_BY_COLUMN[column] ?? camelCase(column)] = value instanceof Date ? value.toISOString() : value;
  }
  payload.productType = 'bitbucket';

  if (payload.baseApiUrl === undefined) {
    if (payload.baseUrl !== BITBUCKET_ORIGIN && payload.baseUrl !== `${BITBUCKET_ORIGIN}/`) {
      return {
        location,
        clientKey,
        content: {
          kind: 'unreadable',
          reason: `base_url is not ${BITBUCKET_ORIGIN}, so its API origin is unknown and the table has no base_api_url column.`,
        },
      };
    }
    payload.baseApiUrl = BITBUCKET_API_ORIGIN;
  }

  const updatedAt = toDate(row.last_modified_date) ?? toDate(row.created_date);
  const installedAt = toDate(row.created_date);
  return {
    location,
    clientKey,
    content: {
      kind: 'payload',
      payload,
      state: row.addon_installed === false ? 'uninstalled' : 'installed',
      ...(updatedAt === undefined ? {} : { updatedAt }),
      ...(installedAt === undefined ? {} : { installedAt }),
      note: 'principal unknown until the next re-install (spring-boot does not store it)',
    },
  };
}

function camelCase(column: string): string {
  return column.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Reads a timestamp column; pg returns Date for timestamp types and a string for text. */
function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? undefined : value;
  }
  if (typeof value === 'string' && value !== '') {
    const parsed = new Date(value);
    return Number.isNaN(parsed.getTime()) ? undefined : parsed;
  }
  return undefined;
}
