/**
 * Server-rendered HTML of the sample app's pages. `html` escapes every
 * interpolated value, so repository data cannot inject markup.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { AppSettings, LastEvent } from './store';

export interface Repository {
  uuid: string;
  name: string;
  full_name: string;
  description?: string;
}

export interface Commit {
  hash: string;
  message: string;
  date?: string;
  author?: { raw?: string; user?: { display_name?: string } };
}

export interface PullRequest {
  id: number;
  title: string;
  state?: string;
  author?: { display_name?: string };
}

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Document shell: loads all.js from the Bitbucket host that embeds the page. */
function layout(title: string, hostOrigin: string, body: Html, sessionToken: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<meta name="connect-session" content="${sessionToken}">
<script src="${hostOrigin}/atlassian-connect/all.js" async></script>
<style>
body { font: 14px/1.4 -apple-system, "Segoe UI", sans-serif; margin: 12px; color: #172b4d; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 18px; }
ul { padding-left: 18px; } code { font-size: 12px; color: #5e6c84; }
.empty { color: #6b778c; }
</style>
</head>
<body>
${body}
</body>
</html>`;
}

function commitAuthor(commit: Commit): string {
  return commit.author?.user?.display_name ?? commit.author?.raw ?? 'unknown';
}

export function repositoryPage(options: {
  hostOrigin: string;
  sessionToken: string;
  repository: Repository;
  commits: Commit[];
  pullRequests: PullRequest[];
  lastEvent: LastEvent | null;
}): Html {
  const { repository, commits, pullRequests, lastEvent } = options;
  const body = html`<h1 id="repository-name">${repository.full_name}</h1>
${repository.description ? html`<p>${repository.description}</p>` : ''}
<h2>Latest commits</h2>
<ul id="commits">
${commits.map((commit) => html`<li><code>${commit.hash.slice(0, 12)}</code> ${commit.message.split('\n')[0]} <span class="empty">(${commitAuthor(commit)})</span></li>`)}
</ul>
${commits.length === 0 ? html`<p class="empty">No commits.</p>` : ''}
<h2>Open pull requests</h2>
<ul id="pull-requests">
${pullRequests.map((pr) => html`<li>#${pr.id} ${pr.title} <span class="empty">(${pr.author?.display_name ?? 'unknown'})</span></li>`)}
</ul>
${pullRequests.length === 0 ? html`<p class="empty">No open pull requests.</p>` : ''}
<h2>Last webhook event</h2>
<p id="last-event">${lastEvent === null ? html`<span class="empty">None received yet.</span>` : html`${lastEvent.event}: ${lastEvent.summary} <span class="empty">at ${lastEvent.receivedAt}</span>`}</p>
<button id="refresh" type="button">Refresh last event</button>
<script>
${raw(REFRESH_SCRIPT)}
</script>`;
  return layout(`${repository.name} overview`, options.hostOrigin, body, options.sessionToken);
}

/**
 * Fetches the last event again with the session token, the way an iframe
 * page makes its own calls back to the app.
 */
const REFRESH_SCRIPT = `
document.getElementById('refresh').addEventListener('click', async () => {
  const token = document.querySelector('meta[name="connect-session"]').content;
  const repo = new URLSearchParams(location.search).get('repoUuid');
  const response = await fetch('/api/last-event?repoUuid=' + encodeURIComponent(repo), { headers: { Authorization: 'JWT ' + token } });
  const target = document.getElementById('last-event');
  if (!response.ok) { target.textContent = 'Refresh failed (' + response.status + ')'; return; }
  const body = await response.json();
  target.textContent = body.lastEvent ? body.lastEvent.event + ': ' + body.lastEvent.summary + ' at ' + body.lastEvent.receivedAt : 'None received yet.';
});
if (window.AP && AP.resize) { AP.resize(); }
`;

export function configurePage(options: {
  hostOrigin: string;
  sessionToken: string;
  workspace: string;
  installedAt: string;
  settings: AppSettings;
  maxCommitCount: number;
}): Html {
  const body = html`<h1>Configure</h1>
<p>Installed in <strong id="workspace">${options.workspace}</strong> since ${options.installedAt}.</p>
<form id="settings">
<label>Commits shown on the repository page
<input id="commit-count" name="commitCount" type="number" min="1" max="${options.maxCommitCount}" value="${options.settings.commitCount}"></label>
<button type="submit">Save</button>
<span id="status" class="empty"></span>
</form>
<script>
${raw(SETTINGS_SCRIPT)}
</script>`;
  return layout('Configure', options.hostOrigin, body, options.sessionToken);
}

const SETTINGS_SCRIPT = `
document.getElementById('settings').addEventListener('submit', async (event) => {
  event.preventDefault();
  document.getElementById('status').textContent = 'Saving...';
  const token = document.querySelector('meta[name="connect-session"]').content;
  const commitCount = Number(document.getElementById('commit-count').value);
  const response = await fetch('/api/settings', {
    method: 'POST',
    headers: { Authorization: 'JWT ' + token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ commitCount }),
  });
  document.getElementById('status').textContent = response.ok ? 'Saved.' : 'Saving failed (' + response.status + ')';
});
if (window.AP && AP.resize) { AP.resize(); }
`;

export function unavailablePage(hostOrigin: string, reason: string): Html {
  return layout(
    'Bitbucket unavailable',
    hostOrigin,
    html`<h1>Bitbucket could not be reached</h1><p id="reason">${reason}</p><p>Reload the page to try again.</p>`,
    '',
  );
}
