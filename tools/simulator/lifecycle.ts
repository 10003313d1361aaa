// Install and uninstall: the lifecycle callbacks Bitbucket sends to a Connect
// app. The first install of a clientKey is unsigned. A re-install, and an
// install after an uninstall, carries a new sharedSecret in the body and a JWT
// signed with the previous one. The simulator adopts the new secret only when
// the app responds with 2xx. An uninstall is signed with the current secret.

import { fetchDescriptorReport } from './descriptor';
import { postJsonToApp, type AppResponse } from './http';
import { signRequestJwt } from './jwt';
import { renderTeamPrincipal, renderUser } from './representations';
import { grantedScopesFor } from './scopes';
import { createClientKey, createSharedSecret, type Installation, type SimulatorState } from './state';
import { type InstallKind, type InstallResult, SimulatorError, type UninstallResult } from './types';

// A placeholder: Bitbucket sends a public key, but its symmetric JWTs never use it.
const PLACEHOLDER_PUBLIC_KEY = 'MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC-simulator-placeholder-public-key';

type LifecycleEvent = 'installed' | 'uninstalled';

function buildLifecyclePayload(
  state: SimulatorState,
  installation: Installation,
  sharedSecret: string,
  eventType: LifecycleEvent,
): Record<string, unknown> {
  return {
    key: installation.appKey,
    clientKey: installation.clientKey,
    sharedSecret,
    publicKey: PLACEHOLDER_PUBLIC_KEY,
    baseUrl: state.url,
    baseApiUrl: state.url,
    productType: 'bitbucket',
    eventType,
    principal: renderTeamPrincipal(state.url, state.seed.workspace),
    user: renderUser(state.url, state.seed.installer),
  };
}

function lifecyclePath(descriptor: Record<string, unknown> | undefined, event: LifecycleEvent): string | undefined {
  const lifecycle = descriptor?.lifecycle;
  if (typeof lifecycle !== 'object' || lifecycle === null) {
    return undefined;
  }
  const path = (lifecycle as Record<string, unknown>)[event];
  return typeof path === 'string' ? path : undefined;
}

/** Returns the installation to install into: the current one for the same app key, or a new one. */
function prepareInstallation(state: SimulatorState, appKey: string): Installation {
  const current = state.currentInstallation();
  if (current !== undefined && current.appKey === appKey) {
    return current;
  }
  const installation: Installation = { clientKey: createClientKey(), appKey, installed: false, grantedScopes: [] };
  state.installations.set(installation.clientKey, installation);
  state.currentClientKey = installation.clientKey;
  return installation;
}

function installKindOf(installation: Installation): InstallKind {
  if (installation.sharedSecret === undefined) {
    return 'first-install';
  }
  return installation.installed ? 'reinstall' : 'install-after-uninstall';
}

/** Fetches the descriptor, then sends the installed callback. */
export async function install(state: SimulatorState): Promise<InstallResult> {
  const report = await fetchDescriptorReport(state.appBaseUrl);
  const descriptor = report.descriptor;
  const installedPath = lifecyclePath(descriptor, 'installed');
  if (!report.ok || descriptor === undefined || installedPath === undefined) {
    state.counts.installFailures += 1;
    const errors = report.problems.filter((problem) => problem.severity === 'error');
    state.log(`install rejected: the descriptor has ${errors.length} error(s): ${errors.map((problem) => problem.message).join('; ')}`);
    return { ok: false, status: null, clientKey: null, kind: null, signed: false, error: 'descriptor rejected', problems: report.problems };
  }

  const installation = prepareInstallation(state, String(descriptor.key));
  const kind = installKindOf(installation);
  const previousSecret = installation.sharedSecret;
  const newSecret = createSharedSecret();
  const url = `${state.appBaseUrl}${installedPath}`;

  const headers: Record<string, string> = {};
  if (previousSecret !== undefined) {
    const token = signRequestJwt({
      issuer: installation.clientKey,
      method: 'POST',
      url,
      baseUrl: state.appBaseUrl,
      sharedSecret: previousSecret,
    });
    headers.Authorization = `JWT ${token}`;
  }

  const payload = buildLifecyclePayload(state, installation, newSecret, 'installed');
  const response = await postJsonToApp(url, payload, headers);
  state.counts.lastInstallStatus = response.status;
  const ok = response.status !== null && response.status >= 200 && response.status < 300;
  const signed = previousSecret !== undefined;

  if (!ok) {
    state.counts.installFailures += 1;
    const outcome = response.status === null ? `failed: ${response.error}` : `was rejected with HTTP ${response.status}`;
    const secretNote = signed ? '; the previous secret stays in use' : '';
    const result: InstallResult = { ok, status: response.status, clientKey: installation.clientKey, kind, signed };
    result.error = response.error ?? describeRejection(response);
    state.log(`install ${kind} of ${installation.clientKey} ${outcome}${secretNote}: ${result.error}`);
    return result;
  }

  installation.sharedSecret = newSecret;
  installation.installed = true;
  installation.descriptor = descriptor;
  installation.grantedScopes = grantedScopesFor(descriptor.scopes);
  state.counts.installs += 1;
  if (signed) {
    state.counts.reinstalls += 1;
  }
  state.log(`install ${kind} of ${installation.clientKey} -> ${response.status} (${signed ? 'signed with the previous secret' : 'unsigned'})`);
  return { ok, status: response.status, clientKey: installation.clientKey, kind, signed };
}

/**
 * Sends the uninstalled callback signed with the current secret. The
 * installation is marked uninstalled and its access tokens revoked whatever
 * the app responds, as when a workspace admin removes an app. The secret is
 * kept for signing the next install.
 */
export async function uninstall(state: SimulatorState): Promise<UninstallResult> {
  const installation = state.currentInstallation();
  if (installation === undefined || !installation.installed || installation.sharedSecret === undefined) {
    throw new SimulatorError(409, 'no app is installed; install it first');
  }

  installation.installed = false;
  state.revokeAccessTokens(installation.clientKey);
  state.counts.uninstalls += 1;

  const uninstalledPath = lifecyclePath(installation.descriptor, 'uninstalled');
  if (uninstalledPath === undefined) {
    state.log(`uninstall of ${installation.clientKey}: the descriptor has no lifecycle.uninstalled, so no callback was sent`);
    return { ok: true, status: null, clientKey: installation.clientKey };
  }

  const url = `${state.appBaseUrl}${uninstalledPath}`;
  const token = signRequestJwt({
    issuer: installation.clientKey,
    method: 'POST',
    url,
    baseUrl: state.appBaseUrl,
    sharedSecret: installation.sharedSecret,
  });
  const payload = buildLifecyclePayload(state, installation, installation.sharedSecret, 'uninstalled');
  const response = await postJsonToApp(url, payload, { Authorization: `JWT ${token}` });
  const ok = response.status !== null && response.status >= 200 && response.status < 300;
  state.log(`uninstall of ${installation.clientKey} -> ${response.status ?? `failed: ${response.error}`}`);

  const result: UninstallResult = { ok, status: response.status, clientKey: installation.clientKey };
  if (!ok) {
    result.error = response.error ?? describeRejection(response);
  }
  return result;
}

function describeRejection(response: AppResponse): string {
  const status = `the app rejected the request with HTTP ${response.status}`;
  return response.appMessage === undefined ? status : `${status}: ${response.appMessage}`;
}
