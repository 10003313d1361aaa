/**
 * The sample app's own KV data. The framework's keys live in
 * src/connect/storage-keys.ts; the app keeps its keys here, in the same
 * namespace, under the `app:` prefix.
 *
 * | key                                             | value                | TTL  |
 * |-------------------------------------------------|----------------------|------|
 * | `app:last-event:{clientKey}:{repositoryUuid}`   | `LastEvent` JSON     | none |
 * | `app:settings:{clientKey}`                      | `AppSettings` JSON   | none |
 *
 * Both ids are percent-encoded with encodeURIComponent.
 */

/** The newest webhook event seen for a repository. */
export interface LastEvent {
  event: string;
  receivedAt: string;
  actor?: string;
  summary: string;
}

/** Per-installation settings edited on the configure page. */
export interface AppSettings {
  commitCount: number;
}

export const DEFAULT_SETTINGS: AppSettings = { commitCount: 5 };
export const MAX_COMMIT_COUNT = 30;

function lastEventKey(clientKey: string, repositoryUuid: string): string {
  return `app:last-event:${encodeURIComponent(clientKey)}:${encodeURIComponent(repositoryUuid)}`;
}

function settingsKey(clientKey: string): string {
  return `app:settings:${encodeURIComponent(clientKey)}`;
}

export async function readLastEvent(kv: KVNamespace, clientKey: string, repositoryUuid: string): Promise<LastEvent | null> {
  return kv.get<LastEvent>(lastEventKey(clientKey, repositoryUuid), 'json');
}

export async function writeLastEvent(kv: KVNamespace, clientKey: string, repositoryUuid: string, event: LastEvent): Promise<void> {
  await kv.put(lastEventKey(clientKey, repositoryUuid), JSON.stringify(event));
}

export async function readSettings(kv: KVNamespace, clientKey: string): Promise<AppSettings> {
  const stored = await kv.get<Partial<AppSettings>>(settingsKey(clientKey), 'json');
  return { ...DEFAULT_SETTINGS, ...stored };
}

export async function writeSettings(kv: KVNamespace, clientKey: string, settings: AppSettings): Promise<void> {
  await kv.put(settingsKey(clientKey), JSON.stringify(settings));
}
