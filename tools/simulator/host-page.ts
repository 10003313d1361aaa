// The repository page at /{workspace}/{repo_slug}: it embeds every page module
// of the installed app in an iframe, the way Bitbucket does, with context
// parameters filled in, `xdm_e` and a freshly signed `jwt` appended.

import { hostPageScript } from './all-js';
import { contextParameterNames, listPageModules } from './descriptor';
import { signRequestJwt } from './jwt';
import { findRepository } from './resources';
import { expandScopes, scopeForContextParameter } from './scopes';
import { DEMO_REPOSITORY_SLUG, type SeedData, type SeedRepository } from './seed';
import type { Installation, SimulatorState } from './state';
import { SimulatorError } from './types';

/** Returns the value of every context parameter the simulator fills in for a repository page. */
function contextValues(seed: SeedData, repository: SeedRepository): Record<string, string> {
  const user = seed.installer;
  return {
    'repository.uuid': repository.uuid,
    'repository.name': repository.name,
    'repository.slug': repository.slug,
    'repository.full_name': `${seed.workspace.slug}/${repository.slug}`,
    'repository.owner.uuid': seed.workspace.uuid,
    'workspace.uuid': seed.workspace.uuid,
    'workspace.slug': seed.workspace.slug,
    'principal.uuid': seed.workspace.uuid,
    'user.uuid': user.uuid,
    'user.account_id': user.accountId,
    // NOTE: taken to be the account that owns the viewed repository; Bitbucket's
    // documentation names target_user but does not define it for repository pages.
    'target_user.uuid': seed.workspace.uuid,
    'branch.name': 'main',
  };
}

/**
 * Replaces each `{parameter}` of a module URL with its percent-encoded value.
 * Unknown parameters, and parameters whose scope the app lacks, become empty.
 * NOTE: Atlassian's documentation says such parameters are "not replaced",
 * which may mean that Bitbucket leaves the placeholder in the URL.
 */
export function fillContextParameters(url: string, values: Record<string, string>, grantedScopes: Set<string>): string {
  let filled = url;
  for (const name of new Set(contextParameterNames(url))) {
    const scope = scopeForContextParameter(name);
    const value = scope !== undefined && grantedScopes.has(scope) ? values[name] ?? '' : '';
    filled = filled.split(`{${name}}`).join(encodeURIComponent(value));
  }
  return filled;
}

/** Builds a signed iframe URL for one module URL: context parameters, then `xdm_e`, then `jwt`. */
function signIframeUrl(
  state: SimulatorState,
  installation: Installation,
  moduleUrl: string,
  repository: SeedRepository,
): string {
  const scopes = expandScopes(installation.grantedScopes);
  const filled = fillContextParameters(moduleUrl, contextValues(state.seed, repository), scopes);
  const absolute = /^https?:\/\//.test(filled) ? filled : `${state.appBaseUrl}${filled}`;
  const separator = absolute.includes('?') ? '&' : '?';
  const unsigned = `${absolute}${separator}xdm_e=${encodeURIComponent(state.url)}`;
  const token = signRequestJwt({
    issuer: installation.clientKey,
    subject: state.seed.installer.uuid,
    method: 'GET',
    url: unsigned,
    baseUrl: state.appBaseUrl,
    sharedSecret: installation.sharedSecret as string,
  });
  return `${unsigned}&jwt=${token}`;
}

function requireInstalled(state: SimulatorState): Installation & { descriptor: Record<string, unknown> } {
  const installation = state.currentInstallation();
  if (
    installation === undefined ||
    !installation.installed ||
    installation.sharedSecret === undefined ||
    installation.descriptor === undefined
  ) {
    throw new SimulatorError(409, 'no app is installed; install it first');
  }
  return installation as Installation & { descriptor: Record<string, unknown> };
}

/** Returns a freshly signed iframe URL for the page module with the given key. */
export function buildIframeUrl(state: SimulatorState, moduleKey: string, repositorySlug = DEMO_REPOSITORY_SLUG): string {
  const installation = requireInstalled(state);
  const entry = listPageModules(installation.descriptor).find((candidate) => candidate.module.key === moduleKey);
  if (entry === undefined || typeof entry.module.url !== 'string') {
    throw new SimulatorError(404, `the installed descriptor has no page module with key "${moduleKey}"`);
  }
  const repository = findRepository(state.seed, repositorySlug);
  if (repository === undefined) {
    throw new SimulatorError(404, `repository "${repositorySlug}" not found`);
  }
  return signIframeUrl(state, installation, entry.module.url, repository);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function moduleTitle(module: Record<string, unknown>): string {
  const name = module.name;
  if (typeof name === 'object' && name !== null && typeof (name as { value?: unknown }).value === 'string') {
    return (name as { value: string }).value;
  }
  return String(module.key);
}

function renderPage(title: string, body: string, script = ''): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0 2rem 2rem; color: #172b4d; }
  header { border-bottom: 1px solid #dfe1e6; margin-bottom: 1rem; }
  section { margin-bottom: 2rem; }
  iframe { width: 100%; height: 150px; border: 1px solid #dfe1e6; }
  .kind { color: #6b778c; font-size: 0.85rem; }
  #event-log { font-family: monospace; font-size: 0.85rem; color: #6b778c; }
</style>
</head>
<body>
${body}
${script === '' ? '' : `<script>${script}</script>`}
</body>
</html>
`;
}

/** Renders the repository page, or returns undefined when the repository does not exist. */
export function renderRepositoryPage(state: SimulatorState, repositorySlug: string): string | undefined {
  const repository = findRepository(state.seed, repositorySlug);
  if (repository === undefined) {
    return undefined;
  }
  const fullName = `${state.seed.workspace.slug}/${repository.slug}`;
  const header = `<header><h1>${escapeHtml(fullName)}</h1><p>${escapeHtml(repository.description)}</p></header>`;

  const installation = state.currentInstallation();
  if (installation === undefined || !installation.installed || installation.descriptor === undefined) {
    const hint = `<p>No app is installed. Send <code>POST ${escapeHtml(state.url)}/_sim/install</code>, then reload.</p>`;
    return renderPage(fullName, header + hint);
  }

  const sections = listPageModules(installation.descriptor)
    .filter((entry) => typeof entry.module.url === 'string' && typeof entry.module.key === 'string')
    .map((entry) => {
      const url = signIframeUrl(state, installation, entry.module.url as string, repository);
      const key = String(entry.module.key);
      return `<section>
<h2>${escapeHtml(moduleTitle(entry.module))} <span class="kind">${escapeHtml(entry.kind)} ${escapeHtml(key)}</span></h2>
<iframe data-module-key="${escapeHtml(key)}" src="${escapeHtml(url)}" title="${escapeHtml(key)}"></iframe>
</section>`;
    });
  const modules = sections.length === 0 ? '<p>The installed app has no page modules.</p>' : sections.join('\n');
  const eventLog = '<h2>Messages from the iframes</h2><ul id="event-log"></ul>';
  return renderPage(fullName, header + modules + eventLog, hostPageScript(new URL(state.appBaseUrl).origin));
}

/** Renders the simulator's start page with links to the seeded repositories and the control endpoints. */
export function renderIndexPage(state: SimulatorState): string {
  const links = state.seed.repositories
    .map((repository) => {
      const path = `/${state.seed.workspace.slug}/${repository.slug}`;
      return `<li><a href="${escapeHtml(path)}">${escapeHtml(path.slice(1))}</a></li>`;
    })
    .join('');
  const body = `<header><h1>Bitbucket Cloud simulator</h1><p>App: ${escapeHtml(state.appBaseUrl)}</p></header>
<h2>Repositories</h2><ul>${links}</ul>
<h2>Control</h2><p><a href="/_sim/stats">/_sim/stats</a>, <a href="/_sim/descriptor-report">/_sim/descriptor-report</a>;
POST /_sim/install, /_sim/uninstall, /_sim/webhook, /_sim/failures, /_sim/expire-tokens.</p>`;
  return renderPage('Bitbucket Cloud simulator', body);
}
