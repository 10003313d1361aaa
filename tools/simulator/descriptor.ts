// Fetches the app descriptor and lists what Bitbucket would reject or what is
// probably a mistake. The report never throws: an unreachable app or invalid
// JSON is a problem in the list.

import { APP_REQUEST_TIMEOUT_MS, describeFetchError } from './http';
import { expandScopes, grantedScopesFor, isKnownScope, scopeForContextParameter } from './scopes';
import type { DescriptorProblem, DescriptorReport } from './types';

/** Module kinds whose entries Bitbucket shows in an iframe. */
export const PAGE_MODULE_KINDS = ['repoPages', 'webPanels', 'adminPages', 'configurePage', 'fileViews'] as const;

const MODULE_KEY_PATTERN = /^[a-zA-Z0-9-]+$/;
const CONTEXT_PARAMETER_PATTERN = /\{([^{}]*)\}/g;
const HAS_CONTEXT_PARAMETER_PATTERN = /\{[^{}]*\}/;
// Parameter names on which atlassian-jwt and Atlassian's Java library agree.
const PLAIN_PARAMETER_NAME_PATTERN = /^[A-Za-z0-9_]+$/;

export interface ModuleEntry {
  kind: string;
  /** Location in the descriptor, e.g. `modules.repoPages[0]`. */
  path: string;
  module: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** Lists every module of the descriptor; `configurePage` is a single object, the other kinds are arrays. */
export function listModules(descriptor: Record<string, unknown>): ModuleEntry[] {
  const modules = descriptor.modules;
  if (!isRecord(modules)) {
    return [];
  }
  const entries: ModuleEntry[] = [];
  for (const [kind, value] of Object.entries(modules)) {
    if (Array.isArray(value)) {
      value.forEach((module, index) => {
        if (isRecord(module)) {
          entries.push({ kind, path: `modules.${kind}[${index}]`, module });
        }
      });
    } else if (isRecord(value)) {
      entries.push({ kind, path: `modules.${kind}`, module: value });
    }
  }
  return entries;
}

export function listPageModules(descriptor: Record<string, unknown>): ModuleEntry[] {
  return listModules(descriptor).filter((entry) => (PAGE_MODULE_KINDS as readonly string[]).includes(entry.kind));
}

/** Returns the names of the context parameters in a module URL, e.g. `repository.uuid`. */
export function contextParameterNames(url: string): string[] {
  return [...url.matchAll(CONTEXT_PARAMETER_PATTERN)].map((match) => match[1] ?? '');
}

/** Fetches `${appBaseUrl}/atlassian-connect.json` and checks it. */
export async function fetchDescriptorReport(appBaseUrl: string): Promise<DescriptorReport> {
  const url = `${appBaseUrl}/atlassian-connect.json`;
  const fail = (message: string): DescriptorReport => ({
    url,
    ok: false,
    problems: [{ severity: 'error', path: '', message }],
  });

  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(APP_REQUEST_TIMEOUT_MS), redirect: 'manual' });
    text = await response.text();
  } catch (error) {
    return fail(`fetching the descriptor failed: ${describeFetchError(error)}`);
  }
  if (response.status !== 200) {
    return fail(`fetching the descriptor returned HTTP ${response.status}; Bitbucket needs 200`);
  }

  let descriptor: unknown;
  try {
    descriptor = JSON.parse(text);
  } catch {
    return fail('the descriptor is not valid JSON');
  }
  if (!isRecord(descriptor)) {
    return fail('the descriptor is not a JSON object');
  }

  const problems = checkDescriptor(descriptor, appBaseUrl);
  return { url, ok: !problems.some((problem) => problem.severity === 'error'), problems, descriptor };
}

/** Lists the problems of a parsed descriptor. */
export function checkDescriptor(descriptor: Record<string, unknown>, appBaseUrl: string): DescriptorProblem[] {
  const problems: DescriptorProblem[] = [];
  const report = (severity: DescriptorProblem['severity'], path: string, message: string): void => {
    problems.push({ severity, path, message });
  };

  for (const field of ['key', 'name'] as const) {
    if (!isNonEmptyString(descriptor[field])) {
      report('error', field, `${field} is missing or not a non-empty string`);
    }
  }
  checkBaseUrl(descriptor.baseUrl, appBaseUrl, report);

  const authentication = descriptor.authentication;
  if (!isRecord(authentication) || String(authentication.type).toLowerCase() !== 'jwt') {
    report('error', 'authentication.type', 'authentication.type must be "jwt"');
  }

  const lifecycle = isRecord(descriptor.lifecycle) ? descriptor.lifecycle : {};
  if (!isNonEmptyString(lifecycle.installed) || !lifecycle.installed.startsWith('/')) {
    report('error', 'lifecycle.installed', 'lifecycle.installed must be a path starting with "/"');
  }
  if (lifecycle.uninstalled === undefined) {
    report('warning', 'lifecycle.uninstalled', 'lifecycle.uninstalled is missing, so the app never hears of an uninstall');
  } else if (!isNonEmptyString(lifecycle.uninstalled) || !lifecycle.uninstalled.startsWith('/')) {
    report('error', 'lifecycle.uninstalled', 'lifecycle.uninstalled must be a path starting with "/"');
  }

  checkScopes(descriptor.scopes, report);

  const contexts = descriptor.contexts;
  if (!Array.isArray(contexts) || contexts.length !== 1 || contexts[0] !== 'account') {
    report('error', 'contexts', 'contexts must be ["account"]; the personal context was removed in 2023');
  }

  if (descriptor.apiMigrations !== undefined) {
    report('error', 'apiMigrations', 'apiMigrations is for Jira and Confluence only; remove it');
  }

  checkModules(descriptor, report);
  return problems;
}

type Report = (severity: DescriptorProblem['severity'], path: string, message: string) => void;

function checkBaseUrl(baseUrl: unknown, appBaseUrl: string, report: Report): void {
  if (!isNonEmptyString(baseUrl)) {
    report('error', 'baseUrl', 'baseUrl is missing or not a string');
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    report('error', 'baseUrl', `baseUrl ${JSON.stringify(baseUrl)} is not an absolute URL`);
    return;
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    report('error', 'baseUrl', `baseUrl ${baseUrl} must use https (plain http is only usable on loopback)`);
  }
  if (parsed.pathname !== '/' && parsed.pathname !== '') {
    report('warning', 'baseUrl', `baseUrl ${baseUrl} has a path; the simulator only signs requests to an app at its origin root`);
  }
  if (parsed.origin !== new URL(appBaseUrl).origin) {
    report('warning', 'baseUrl', `baseUrl ${baseUrl} differs from ${appBaseUrl}, the URL the simulator sends requests to`);
  }
}

function checkScopes(scopes: unknown, report: Report): void {
  if (scopes === undefined) {
    report('warning', 'scopes', 'scopes is missing, so Bitbucket grants every scope; list the scopes the app needs');
    return;
  }
  if (!Array.isArray(scopes)) {
    report('error', 'scopes', 'scopes must be an array of strings');
    return;
  }
  scopes.forEach((scope, index) => {
    if (typeof scope !== 'string' || !isKnownScope(scope)) {
      report('error', `scopes[${index}]`, `unknown scope ${JSON.stringify(scope)}`);
    }
  });
}

function checkModules(descriptor: Record<string, unknown>, report: Report): void {
  if (descriptor.modules !== undefined && !isRecord(descriptor.modules)) {
    report('error', 'modules', 'modules must be an object');
    return;
  }
  const granted = expandScopes(grantedScopesFor(descriptor.scopes));
  const seenKeys = new Set<string>();

  for (const { kind, path, module } of listModules(descriptor)) {
    const key = module.key;
    if (kind !== 'webhooks' || key !== undefined) {
      if (typeof key !== 'string' || !MODULE_KEY_PATTERN.test(key)) {
        report('error', `${path}.key`, `module key ${JSON.stringify(key)} must match ^[a-zA-Z0-9-]+$`);
      } else if (seenKeys.has(key)) {
        report('error', `${path}.key`, `module key "${key}" is used more than once`);
      } else {
        seenKeys.add(key);
      }
    }

    if (kind === 'webhooks' && !isNonEmptyString(module.event)) {
      report('error', `${path}.event`, 'webhook event is missing');
    }
    const needsUrl = kind === 'webhooks' || (PAGE_MODULE_KINDS as readonly string[]).includes(kind);
    if (module.url === undefined) {
      if (needsUrl) {
        report('error', `${path}.url`, 'url is missing');
      }
      continue;
    }
    if (!isNonEmptyString(module.url)) {
      report('error', `${path}.url`, 'url must be a non-empty string');
      continue;
    }
    checkModuleUrl(module.url, `${path}.url`, needsUrl, granted, report);
  }
}

function checkModuleUrl(url: string, path: string, loadedBySimulator: boolean, granted: Set<string>, report: Report): void {
  if (loadedBySimulator && !url.startsWith('/')) {
    report('warning', path, `url ${url} is not relative to baseUrl; the simulator only loads relative module URLs`);
  }

  const queryStart = url.indexOf('?');
  const urlPath = queryStart === -1 ? url : url.slice(0, queryStart);
  if (HAS_CONTEXT_PARAMETER_PATTERN.test(urlPath)) {
    report('warning', path, 'context parameters in the URL path need percent-encoding, where the simulator\'s signer and Bitbucket\'s may disagree; move them to the query');
  }

  for (const parameter of contextParameterNames(url)) {
    const scope = scopeForContextParameter(parameter);
    if (scope === undefined) {
      report('warning', path, `unknown context parameter {${parameter}}`);
    } else if (!granted.has(scope)) {
      report('warning', path, `context parameter {${parameter}} needs the ${scope} scope; without it Bitbucket does not replace it`);
    }
  }

  if (queryStart !== -1) {
    for (const pair of url.slice(queryStart + 1).split('&')) {
      const name = pair.split('=')[0] ?? '';
      if (name !== '' && !PLAIN_PARAMETER_NAME_PATTERN.test(name)) {
        report('warning', path, `query parameter name "${name}" is not plain ASCII letters, digits or _, where the qsh of atlassian-jwt and of Bitbucket may differ`);
      }
    }
  }
}
