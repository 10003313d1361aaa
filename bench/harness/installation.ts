/**
 * The installation both apps get for the throughput runs, and the page tokens
 * signed for it. Tokens are signed with the npm package atlassian-jwt, an
 * implementation independent of the framework, as Bitbucket would sign them:
 * HS256, `iss` = clientKey, `sub` = an account, `qsh` of GET /bench/page.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createQueryStringHash, encodeSymmetric, fromMethodAndUrl, SymmetricAlgorithm } from 'atlassian-jwt';
import { BENCH_APP_KEY, PAGE_PATH } from '../worker/constants';

/** Lifetime of the pre-signed page tokens, in seconds, longer than any bench run. */
const PAGE_TOKEN_LIFETIME_SECONDS = 3600;

/** Bytes of randomness in the shared secret, which are 64 base64url characters. */
const SHARED_SECRET_BYTES = 48;

export interface BenchInstallation {
  readonly clientKey: string;
  readonly sharedSecret: string;
  /** The `installed` body, shaped like Bitbucket's, posted unchanged to both apps. */
  readonly payload: Readonly<Record<string, unknown>>;
}

export function createBenchInstallation(): BenchInstallation {
  const workspaceUuid = `{${randomUUID()}}`;
  const clientKey = `ari:cloud:bitbucket::app/${workspaceUuid}/${BENCH_APP_KEY}`;
  const sharedSecret = randomBytes(SHARED_SECRET_BYTES).toString('base64url');

  const payload = {
    key: BENCH_APP_KEY,
    clientKey,
    sharedSecret,
    publicKey: 'MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC-bench-placeholder',
    baseUrl: 'https://bitbucket.org',
    baseApiUrl: 'https://api.bitbucket.org',
    productType: 'bitbucket',
    eventType: 'installed',
    principal: {
      type: 'team',
      uuid: workspaceUuid,
      username: 'bench-workspace',
      display_name: 'Bench workspace',
    },
    user: {
      type: 'user',
      uuid: `{${randomUUID()}}`,
      display_name: 'Bench installer',
      account_id: '557058:bench-installer',
    },
  };
  return { clientKey, sharedSecret, payload };
}

/** Posts the installed payload without a JWT, as Bitbucket sends a first install, and throws unless the app responds with 2xx. */
export async function postFirstInstall(appUrl: string, installation: BenchInstallation): Promise<void> {
  const response = await fetch(`${appUrl}/installed`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(installation.payload),
  });
  const body = await response.text();
  if (!response.ok) {
    throw new Error(`The first install at ${appUrl}/installed failed with HTTP ${response.status}: ${body.slice(0, 300)}`);
  }
}

/**
 * Signs `count` distinct tokens for GET /bench/page. Each has its own `sub`,
 * so that no two requests carry the same token.
 */
export function signPageTokens(installation: BenchInstallation, count: number): string[] {
  const qsh = createQueryStringHash(fromMethodAndUrl('GET', PAGE_PATH));
  const issuedAt = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const claims = {
      iss: installation.clientKey,
      sub: `{00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}}`,
      iat: issuedAt,
      exp: issuedAt + PAGE_TOKEN_LIFETIME_SECONDS,
      qsh,
    };
    tokens.push(encodeSymmetric(claims, installation.sharedSecret, SymmetricAlgorithm.HS256));
  }
  return tokens;
}
