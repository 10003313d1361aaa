// Public types of the simulator: its options, the handle that startSimulator
// returns, and the results of its actions. The control endpoints under /_sim/
// return the same shapes as JSON.

import type { SeedData } from './seed';

export interface SimulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port to listen on; default 0, which picks a free port. */
  port?: number;
  /** Base URL of the Connect app at its origin root, e.g. http://127.0.0.1:8787. */
  appBaseUrl: string;
  /** Lifetime of issued access tokens in seconds; default 7200. */
  tokenLifetimeSeconds?: number;
  /** Also send the older `scope` field in token responses, next to `scopes`. */
  legacyScopeField?: boolean;
  /** Receives one line per step; never a secret or token. Default: no output. */
  log?: (line: string) => void;
}

export type ProblemSeverity = 'error' | 'warning';

export interface DescriptorProblem {
  /** `error`: Bitbucket would reject the descriptor. `warning`: accepted but probably not intended. */
  severity: ProblemSeverity;
  /** Location in the descriptor, e.g. `modules.repoPages[0].key`. */
  path: string;
  message: string;
}

export interface DescriptorReport {
  /** URL the descriptor was fetched from. */
  url: string;
  /** True when no problem has severity `error`. */
  ok: boolean;
  problems: DescriptorProblem[];
  /** Parsed descriptor, when it could be fetched and parsed. */
  descriptor?: Record<string, unknown>;
}

/** Kind of installed callback; only a `first-install` is sent without a JWT. */
export type InstallKind = 'first-install' | 'reinstall' | 'install-after-uninstall';

export interface InstallResult {
  /** True when the app responded to the installed callback with 2xx. */
  ok: boolean;
  /** HTTP status of the app's response; null when no request was made or it failed. */
  status: number | null;
  clientKey: string | null;
  kind: InstallKind | null;
  /** True when the request carried a JWT signed with the previous shared secret. */
  signed: boolean;
  /** Reason the install failed, when it did. */
  error?: string;
  /** Descriptor problems, when the descriptor was rejected. */
  problems?: DescriptorProblem[];
}

export interface UninstallResult {
  /** True when the app responded to the uninstalled callback with 2xx. The installation is marked uninstalled either way. */
  ok: boolean;
  status: number | null;
  clientKey: string;
  error?: string;
}

export interface WebhookDelivery {
  /** Key of the webhook module, when the descriptor gives one. */
  moduleKey: string | null;
  /** Event the module subscribes to: the event itself or `*`. */
  subscribedEvent: string;
  url: string;
  requestUuid: string;
  /** HTTP status of the app's answer; null when the request failed. */
  status: number | null;
  error?: string;
}

export interface WebhookResult {
  event: string;
  /** One entry per matching webhook module; empty when none subscribes. */
  deliveries: WebhookDelivery[];
}

export interface FailureRuleInput {
  /** Glob over the raw request path: `*` matches within one segment, `**` across segments. Default: every API and token request. */
  path?: string;
  /** HTTP status to answer with (400-599). Without it, `delayMs` only slows the request down. */
  status?: number;
  /** Number of matching requests to affect; default 1. */
  count?: number;
  /** Value of a Retry-After header, in seconds. */
  retryAfterSeconds?: number;
  /** Response body. Default: text for 429, a Bitbucket JSON error for other statuses. */
  body?: string;
  /** Delay before answering, in milliseconds. */
  delayMs?: number;
}

export interface FailureRule extends Required<Pick<FailureRuleInput, 'path' | 'count'>> {
  status: number | null;
  retryAfterSeconds: number | null;
  body: string | null;
  delayMs: number;
  /** Matching requests that this rule will still affect. */
  remaining: number;
}

export interface SimulatorStats {
  /** Successful installed callbacks of every kind. */
  installs: number;
  /** Successful installed callbacks signed with a previous secret (re-installs and installs after an uninstall). */
  reinstalls: number;
  uninstalls: number;
  /** Installs that failed: descriptor rejected, app unreachable or non-2xx answer. */
  installFailures: number;
  /** Token endpoint requests answered with 200. */
  tokenExchanges: number;
  /** Token endpoint requests answered with an error, injected failures included. */
  tokenExchangeFailures: number;
  apiCalls: { total: number; byStatus: Record<string, number> };
  webhooksSent: number;
  /** Webhook answers per HTTP status; `error` counts requests that got no answer. */
  webhookResponses: Record<string, number>;
  /** Status of the last installed callback; null before the first or when none was sent. */
  lastInstallStatus: number | null;
  installation: { clientKey: string; installed: boolean } | null;
}

export interface IframeUrlOptions {
  /** Repository slug the page is shown for; default `demo-repo`. */
  repository?: string;
}

export interface Simulator {
  /** Origin of the simulator, e.g. http://127.0.0.1:PORT: both baseUrl and baseApiUrl of the installation. */
  readonly url: string;
  /** The seeded workspace, users, repositories, commits and pull requests. */
  readonly data: SeedData;
  close(): Promise<void>;
  checkDescriptor(): Promise<DescriptorReport>;
  install(): Promise<InstallResult>;
  uninstall(): Promise<UninstallResult>;
  sendWebhook(event: string, data?: object): Promise<WebhookResult>;
  /** Returns a freshly signed iframe URL for a page module, as the repository page embeds it. */
  iframeUrl(moduleKey: string, options?: IframeUrlOptions): string;
  stats(): SimulatorStats;
  resetStats(): void;
  /** Marks every issued access token expired and returns how many there were. */
  expireTokens(): number;
  setTokenLifetime(seconds: number): void;
  setLegacyScopeField(enabled: boolean): void;
  /** Adds a failure rule; rules are tried in the order they were added. */
  addFailure(rule: FailureRuleInput): FailureRule;
  clearFailures(): void;
}

/** An action that cannot run in the simulator's current state, with the HTTP status a control endpoint answers. */
export class SimulatorError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}
