// Mutable state of one simulator: installations per clientKey, issued access
// tokens, counters and settings. Every request handler and action receives the
// same SimulatorState.

import { randomBytes, randomInt } from 'node:crypto';

import type { FailureRule, SimulatorStats } from './types';
import { createSeedData, type SeedData } from './seed';

export const DEFAULT_TOKEN_LIFETIME_SECONDS = 7200;

// 48 random bytes give 64 URL-safe base64 characters, within Bitbucket's
// 128-character limit for shared secrets.
const SHARED_SECRET_BYTES = 48;
const ACCESS_TOKEN_BYTES = 32;

export interface Installation {
  clientKey: string;
  /** Key of the app this installation belongs to. */
  appKey: string;
  /** Secret adopted at the last successful install; undefined until the first one succeeds. */
  sharedSecret?: string;
  installed: boolean;
  /** Descriptor registered by the last successful install. */
  descriptor?: Record<string, unknown>;
  /** Scopes granted at the last successful install, as the descriptor lists them. */
  grantedScopes: string[];
}

export interface AccessTokenRecord {
  clientKey: string;
  scopes: string[];
  /** Braced UUID of the only repository the token may read, when restricted. */
  repositoryUuid?: string;
  expiresAtMs: number;
}

export class Counters {
  installs = 0;
  reinstalls = 0;
  uninstalls = 0;
  installFailures = 0;
  tokenExchanges = 0;
  tokenExchangeFailures = 0;
  apiCallsTotal = 0;
  apiCallsByStatus: Record<string, number> = {};
  webhooksSent = 0;
  webhookResponses: Record<string, number> = {};
  lastInstallStatus: number | null = null;
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export function createSharedSecret(): string {
  return randomBytes(SHARED_SECRET_BYTES).toString('base64url');
}

export function createClientKey(): string {
  return `connection:${randomInt(10_000, 10_000_000)}`;
}

export class SimulatorState {
  readonly seed: SeedData = createSeedData();
  readonly installations = new Map<string, Installation>();
  readonly accessTokens = new Map<string, AccessTokenRecord>();
  readonly failureRules: FailureRule[] = [];
  /** clientKey of the workspace's installation; the simulator has one workspace. */
  currentClientKey: string | undefined;
  tokenLifetimeSeconds: number;
  legacyScopeField: boolean;
  private counters = new Counters();

  constructor(
    readonly url: string,
    readonly appBaseUrl: string,
    tokenLifetimeSeconds: number,
    legacyScopeField: boolean,
    readonly log: (line: string) => void,
  ) {
    this.tokenLifetimeSeconds = tokenLifetimeSeconds;
    this.legacyScopeField = legacyScopeField;
  }

  get counts(): Counters {
    return this.counters;
  }

  currentInstallation(): Installation | undefined {
    return this.currentClientKey === undefined ? undefined : this.installations.get(this.currentClientKey);
  }

  /** Returns the installation of a clientKey when it is installed and has a secret. */
  activeInstallation(clientKey: unknown): Installation | undefined {
    if (typeof clientKey !== 'string') {
      return undefined;
    }
    const installation = this.installations.get(clientKey);
    if (installation === undefined || !installation.installed || installation.sharedSecret === undefined) {
      return undefined;
    }
    return installation;
  }

  issueAccessToken(record: Omit<AccessTokenRecord, 'expiresAtMs'>): { token: string; expiresInSeconds: number } {
    const token = randomBytes(ACCESS_TOKEN_BYTES).toString('base64url');
    const expiresInSeconds = this.tokenLifetimeSeconds;
    this.accessTokens.set(token, { ...record, expiresAtMs: Date.now() + expiresInSeconds * 1000 });
    return { token, expiresInSeconds };
  }

  revokeAccessTokens(clientKey: string): void {
    for (const [token, record] of this.accessTokens) {
      if (record.clientKey === clientKey) {
        this.accessTokens.delete(token);
      }
    }
  }

  /** Marks every issued token expired and returns how many there were. */
  expireAccessTokens(): number {
    const expiredAtMs = Date.now() - 1;
    for (const record of this.accessTokens.values()) {
      record.expiresAtMs = expiredAtMs;
    }
    return this.accessTokens.size;
  }

  recordApiCall(status: number): void {
    this.counters.apiCallsTotal += 1;
    increment(this.counters.apiCallsByStatus, String(status));
  }

  recordWebhookResponse(status: number | null): void {
    this.counters.webhooksSent += 1;
    increment(this.counters.webhookResponses, status === null ? 'error' : String(status));
  }

  resetStats(): void {
    this.counters = new Counters();
  }

  stats(): SimulatorStats {
    const counts = this.counters;
    const installation = this.currentInstallation();
    return {
      installs: counts.installs,
      reinstalls: counts.reinstalls,
      uninstalls: counts.uninstalls,
      installFailures: counts.installFailures,
      tokenExchanges: counts.tokenExchanges,
      tokenExchangeFailures: counts.tokenExchangeFailures,
      apiCalls: { total: counts.apiCallsTotal, byStatus: { ...counts.apiCallsByStatus } },
      webhooksSent: counts.webhooksSent,
      webhookResponses: { ...counts.webhookResponses },
      lastInstallStatus: counts.lastInstallStatus,
      installation:
        installation === undefined ? null : { clientKey: installation.clientKey, installed: installation.installed },
    };
  }
}
