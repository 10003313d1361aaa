/**
 * The Bitbucket Cloud app descriptor: types, validation when the app is built,
 * and rendering with the base URL resolved per request.
 * https://developer.atlassian.com/cloud/bitbucket/app-descriptor/
 */
import { ConnectError } from './errors';

/** Scopes that Bitbucket Cloud defines for Connect apps. */
export const BITBUCKET_SCOPES = [
  'account',
  'account:write',
  'email',
  'issue',
  'issue:write',
  'pipeline',
  'pipeline:write',
  'pipeline:variable',
  'project',
  'project:admin',
  'pullrequest',
  'pullrequest:write',
  'repository',
  'repository:write',
  'repository:admin',
  'repository:delete',
  'runner',
  'runner:write',
  'snippet',
  'snippet:write',
  'team',
  'team:write',
  'webhook',
  'wiki',
] as const;

export type BitbucketScope = (typeof BITBUCKET_SCOPES)[number];

const MODULE_KEY_PATTERN = /^[a-zA-Z0-9-]+$/;

/**
 * Context parameters that Bitbucket fills in only when the app has the
 * matching scope (or a scope that implies it); otherwise they arrive empty.
 */
const CONTEXT_PARAMETER_SCOPES: ReadonlyArray<{ prefix: string; scopes: readonly BitbucketScope[] }> = [
  { prefix: 'repository.', scopes: ['repository', 'repository:write', 'repository:admin'] },
  { prefix: 'pullrequest.', scopes: ['pullrequest', 'pullrequest:write'] },
  { prefix: 'user.', scopes: ['account', 'account:write'] },
  { prefix: 'target_user.', scopes: ['account', 'account:write'] },
];

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A module entry such as a web panel or repository page. */
export interface DescriptorModule {
  key: string;
  url?: string;
  name?: { value: string; [field: string]: unknown };
  location?: string;
  conditions?: unknown[];
  params?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A webhook subscription: Bitbucket POSTs `event` to `url`. */
export interface WebhookModule {
  key?: string;
  event: string;
  url: string;
  [field: string]: unknown;
}

export interface DescriptorModules {
  webhooks?: WebhookModule[];
  webItems?: DescriptorModule[];
  webPanels?: DescriptorModule[];
  repoPages?: DescriptorModule[];
  adminPages?: DescriptorModule[];
  profileTabs?: DescriptorModule[];
  fileViews?: DescriptorModule[];
  configurePage?: DescriptorModule;
  [moduleType: string]: unknown;
}

/** The descriptor as the app defines it; `baseUrl` is added per request. */
export interface AppDescriptor {
  key: string;
  name: string;
  description?: string;
  vendor?: { name: string; url?: string };
  authentication?: { type: 'jwt' };
  lifecycle: { installed: string; uninstalled: string };
  scopes: BitbucketScope[];
  contexts?: ['account'];
  modules: DescriptorModules;
  links?: Record<string, string>;
  [field: string]: unknown;
}

/** The descriptor as served, with every default filled in. */
export interface RenderedDescriptor extends AppDescriptor {
  baseUrl: string;
  authentication: { type: 'jwt' };
  contexts: ['account'];
}

/**
 * Validates a descriptor and returns a frozen copy. Throws a ConnectError
 * (configuration_error) listing every mistake found, so that a broken app
 * fails when it is built rather than when Bitbucket installs it.
 */
export function defineDescriptor(descriptor: AppDescriptor): Readonly<AppDescriptor> {
  const problems = findDescriptorProblems(descriptor as unknown as Record<string, unknown>);
  if (problems.length > 0) {
    throw new ConnectError('configuration_error', `Invalid app descriptor:\n- ${problems.join('\n- ')}`);
  }
  return deepFreeze(structuredClone(descriptor));
}

/** Lists what Bitbucket would reject or misread in a descriptor. */
export function findDescriptorProblems(descriptor: Record<string, unknown>): string[] {
  const problems: string[] = [];

  if (typeof descriptor.key !== 'string' || !/^[a-zA-Z0-9._-]+$/.test(descriptor.key)) {
    problems.push('key must be a non-empty string of letters, digits, ".", "_" or "-".');
  }
  if (typeof descriptor.name !== 'string' || descriptor.name === '') {
    problems.push('name must be a non-empty string.');
  }
  if ('baseUrl' in descriptor) {
    problems.push('baseUrl must not be set in the descriptor: it comes from APP_BASE_URL or the request origin.');
  }
  if ('apiMigrations' in descriptor) {
    problems.push('apiMigrations is a Jira and Confluence setting; Bitbucket rejects or ignores it, so remove it.');
  }
  if (descriptor.authentication !== undefined && !isJwtAuthentication(descriptor.authentication)) {
    problems.push('authentication.type must be "jwt".');
  }
  if (descriptor.contexts !== undefined && !isAccountContext(descriptor.contexts)) {
    problems.push('contexts must be ["account"]; the "personal" context was removed from Bitbucket in 2023.');
  }

  problems.push(...findLifecycleProblems(descriptor.lifecycle));
  const scopes = findScopeProblems(descriptor.scopes, problems);
  problems.push(...findModuleProblems(descriptor.modules, scopes));
  return problems;
}

function findLifecycleProblems(lifecycle: unknown): string[] {
  if (typeof lifecycle !== 'object' || lifecycle === null) {
    return ['lifecycle with "installed" and "uninstalled" paths is required.'];
  }
  const problems: string[] = [];
  for (const event of ['installed', 'uninstalled'] as const) {
    const path = (lifecycle as Record<string, unknown>)[event];
    if (typeof path !== 'string' || !path.startsWith('/')) {
      problems.push(`lifecycle.${event} must be a path starting with "/".`);
    }
  }
  return problems;
}

function findScopeProblems(scopes: unknown, problems: string[]): Set<string> {
  if (!Array.isArray(scopes) || scopes.length === 0) {
    problems.push('scopes must be a non-empty list: without it Bitbucket grants the app every scope.');
    return new Set();
  }
  const known = new Set<string>(BITBUCKET_SCOPES);
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !known.has(scope)) {
      problems.push(`scope ${JSON.stringify(scope)} is unknown; known scopes are ${BITBUCKET_SCOPES.join(', ')}.`);
    }
  }
  return new Set(scopes.filter((scope): scope is string => typeof scope === 'string'));
}

function findModuleProblems(modules: unknown, scopes: Set<string>): string[] {
  if (typeof modules !== 'object' || modules === null) {
    return ['modules must be an object (it may be empty).'];
  }

  const problems: string[] = [];
  const seenKeys = new Set<string>();
  for (const [moduleType, value] of Object.entries(modules)) {
    const entries = Array.isArray(value) ? value : [value];
    for (const entry of entries) {
      if (typeof entry !== 'object' || entry === null) {
        problems.push(`modules.${moduleType} entries must be objects.`);
        continue;
      }
      const module = entry as Record<string, unknown>;
      problems.push(...findModuleEntryProblems(moduleType, module, seenKeys, scopes));
    }
  }
  return problems;
}

function findModuleEntryProblems(
  moduleType: string,
  module: Record<string, unknown>,
  seenKeys: Set<string>,
  scopes: Set<string>,
): string[] {
  const problems: string[] = [];
  const key = module.key;
  const keyRequired = moduleType !== 'webhooks';

  if (key !== undefined || keyRequired) {
    if (typeof key !== 'string' || !MODULE_KEY_PATTERN.test(key)) {
      problems.push(`modules.${moduleType} key ${JSON.stringify(key)} must match ^[a-zA-Z0-9-]+$.`);
    } else if (seenKeys.has(key)) {
      problems.push(`module key "${key}" is used twice; keys must be unique across modules.`);
    } else {
      seenKeys.add(key);
    }
  }

  if (moduleType === 'webhooks' && typeof module.event !== 'string') {
    problems.push('modules.webhooks entries need an "event" such as "repo:push".');
  }
  if (typeof module.url === 'string') {
    if (!module.url.startsWith('/')) {
      problems.push(`modules.${moduleType} url "${module.url}" must be a path relative to the base URL.`);
    }
    problems.push(...findContextParameterProblems(moduleType, module.url, scopes));
  }
  return problems;
}

function findContextParameterProblems(moduleType: string, url: string, scopes: Set<string>): string[] {
  const problems: string[] = [];
  for (const match of url.matchAll(/\{([^}]+)\}/g)) {
    const parameter = match[1] ?? '';
    const rule = CONTEXT_PARAMETER_SCOPES.find((candidate) => parameter.startsWith(candidate.prefix));
    if (rule !== undefined && !rule.scopes.some((scope) => scopes.has(scope))) {
      problems.push(
        `modules.${moduleType} url uses {${parameter}}, which Bitbucket leaves empty without the "${rule.scopes[0]}" scope.`,
      );
    }
  }
  return problems;
}

/**
 * Adds the base URL and defaults. An http base URL is allowed only on a
 * loopback host, for local development.
 */
export function renderDescriptor(descriptor: Readonly<AppDescriptor>, baseUrl: string): RenderedDescriptor {
  return {
    ...structuredClone(descriptor),
    baseUrl,
    authentication: { type: 'jwt' },
    contexts: ['account'],
  } as RenderedDescriptor;
}

/** Normalises and checks the app's base URL: https, or http on loopback only. */
export function resolveAppBaseUrl(configured: string | undefined, requestUrl: string): string {
  const source = configured !== undefined && configured.trim() !== '' ? configured.trim() : new URL(requestUrl).origin;

  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new ConnectError('configuration_error', `APP_BASE_URL "${source}" is not an absolute URL.`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new ConnectError(
      'configuration_error',
      `The app base URL ${url.origin} must use https; http is allowed only on localhost for development.`,
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConnectError('configuration_error', 'APP_BASE_URL must not have a query or fragment.');
  }

  const path = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return `${url.origin}${path}`;
}

/** Returns every page-like module (the ones Bitbucket shows in an iframe) with its type. */
export function listPageModules(descriptor: Readonly<AppDescriptor>): Array<{ type: string; module: DescriptorModule }> {
  const pages: Array<{ type: string; module: DescriptorModule }> = [];
  for (const [type, value] of Object.entries(descriptor.modules)) {
    if (type === 'webhooks' || type === 'webItems') {
      continue;
    }
    const entries = Array.isArray(value) ? value : [value];
    for (const entry of entries) {
      if (typeof entry === 'object' && entry !== null && typeof (entry as DescriptorModule).url === 'string') {
        pages.push({ type, module: entry as DescriptorModule });
      }
    }
  }
  return pages;
}

function isJwtAuthentication(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'jwt';
}

function isAccountContext(value: unknown): boolean {
  return Array.isArray(value) && value.length === 1 && value[0] === 'account';
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) {
      deepFreeze(child);
    }
    Object.freeze(value);
  }
  return value;
}
