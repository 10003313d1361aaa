import { describe, expect, it } from 'vitest';
import { ConnectError, defineDescriptor, findDescriptorProblems, resolveAppBaseUrl, type AppDescriptor } from '../../src/connect';
import { sampleDescriptor } from '../../src/app/descriptor';

const valid: AppDescriptor = {
  key: 'my-app',
  name: 'My app',
  lifecycle: { installed: '/installed', uninstalled: '/uninstalled' },
  scopes: ['account', 'repository'],
  modules: { webPanels: [{ key: 'panel', url: '/panel?repo={repository.uuid}' }] },
};

function problemsOf(overrides: Record<string, unknown>): string[] {
  return findDescriptorProblems({ ...valid, ...overrides } as Record<string, unknown>);
}

describe('descriptor validation', () => {
  it('accepts a valid descriptor', () => {
    expect(problemsOf({})).toEqual([]);
  });

  it('accepts the sample app descriptor', () => {
    expect(findDescriptorProblems(sampleDescriptor as unknown as Record<string, unknown>)).toEqual([]);
  });

  const mistakes: Array<[string, Record<string, unknown>, string]> = [
    ['a module key with a dot', { modules: { webPanels: [{ key: 'my.panel', url: '/p' }] } }, '^[a-zA-Z0-9-]+$'],
    ['a module key with an underscore', { modules: { repoPages: [{ key: 'my_page', url: '/p' }] } }, '^[a-zA-Z0-9-]+$'],
    ['a duplicated module key', { modules: { webPanels: [{ key: 'a', url: '/a' }], repoPages: [{ key: 'a', url: '/b' }] } }, 'used twice'],
    ['missing scopes', { scopes: undefined }, 'every scope'],
    ['empty scopes', { scopes: [] }, 'every scope'],
    ['an unknown scope', { scopes: ['account', 'repo'] }, 'unknown'],
    ['apiMigrations', { apiMigrations: { 'signed-install': true } }, 'apiMigrations'],
    ['missing lifecycle', { lifecycle: undefined }, 'lifecycle'],
    ['missing uninstalled path', { lifecycle: { installed: '/installed' } }, 'lifecycle.uninstalled'],
    ['a personal context', { contexts: ['personal'] }, 'contexts'],
    ['a baseUrl field', { baseUrl: 'https://x.example.com' }, 'baseUrl'],
    ['non-jwt authentication', { authentication: { type: 'none' } }, 'authentication'],
    ['an absolute module url', { modules: { webPanels: [{ key: 'p', url: 'https://evil.example.com/p' }] } }, 'relative'],
    ['a context parameter without its scope', { scopes: ['account'] }, '{repository.uuid}'],
    ['a webhook without event', { modules: { webhooks: [{ url: '/hook' }] } }, 'event'],
  ];

  it.each(mistakes)('reports %s', (_name, overrides, fragment) => {
    const problems = problemsOf(overrides);
    expect(problems.join('\n')).toContain(fragment);
  });

  it('throws a configuration error listing the problems', () => {
    expect(() => defineDescriptor({ ...valid, scopes: [] })).toThrow(ConnectError);
  });

  it('freezes the defined descriptor', () => {
    const defined = defineDescriptor(valid);
    expect(Object.isFrozen(defined.modules)).toBe(true);
  });
});

describe('app base URL', () => {
  it.each([
    ['https://app.example.com', 'https://app.example.com'],
    ['https://app.example.com/', 'https://app.example.com'],
    ['https://gw.example.com/live/', 'https://gw.example.com/live'],
    ['http://localhost:8787', 'http://localhost:8787'],
    ['http://127.0.0.1:8787', 'http://127.0.0.1:8787'],
  ])('resolves %s', (configured, expected) => {
    expect(resolveAppBaseUrl(configured, 'https://ignored.example.com/x')).toBe(expected);
  });

  it.each(['http://app.example.com', 'ftp://app.example.com', 'not a url', 'https://app.example.com/?x=1'])('rejects %s', (configured) => {
    expect(() => resolveAppBaseUrl(configured, 'https://ignored.example.com')).toThrow(ConnectError);
  });

  it('uses the request origin when unset', () => {
    expect(resolveAppBaseUrl('', 'https://worker.example.workers.dev/atlassian-connect.json')).toBe('https://worker.example.workers.dev');
  });
});
