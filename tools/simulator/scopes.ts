// Bitbucket Cloud scopes as the simulator applies them to descriptors, access
// tokens, REST resources and module context parameters.
//
// Sources: Atlassian's "Scopes for the Bitbucket Cloud REST API" page for the
// scope names and the implications below, and its "Access to context
// parameters" page for the context parameter table.

export const KNOWN_SCOPES: readonly string[] = [
  'account',
  'account:write',
  'repository',
  'repository:write',
  'repository:admin',
  'repository:delete',
  'pullrequest',
  'pullrequest:write',
  'issue',
  'issue:write',
  'wiki',
  'webhook',
  'snippet',
  'snippet:write',
  'pipeline',
  'pipeline:write',
  'pipeline:variable',
  'runner',
  'runner:write',
  'project',
  'project:admin',
  'team',
  'team:write',
  'email',
];

// Scopes that a granted scope includes. repository:admin includes neither
// repository nor repository:write, so it has no entry.
// NOTE: only the implications that Atlassian documents are listed. Bitbucket
// may grant more (for example pipeline:write reading pipelines).
const IMPLIED_SCOPES: Readonly<Record<string, readonly string[]>> = {
  'repository:write': ['repository'],
  'pullrequest': ['repository'],
  'pullrequest:write': ['pullrequest', 'repository:write', 'repository'],
  'issue:write': ['issue'],
  'snippet:write': ['snippet'],
  'team:write': ['team'],
  'project': ['repository'],
};

// The first name of a context parameter (`repository` in
// `{repository.uuid}`) mapped to the scope without which Bitbucket leaves the
// parameter unreplaced.
const CONTEXT_PARAMETER_SCOPES: Readonly<Record<string, string>> = {
  user: 'account',
  target_user: 'account',
  workspace: 'account',
  principal: 'account',
  repository: 'repository',
  branch: 'repository',
  commit: 'repository',
  file: 'repository',
  directory: 'repository',
  pullrequest: 'pullrequest',
  snippet: 'snippet',
  issue: 'issue',
};

export function isKnownScope(scope: string): boolean {
  return KNOWN_SCOPES.includes(scope);
}

/** Returns the granted scopes together with every scope they imply. */
export function expandScopes(scopes: readonly string[]): Set<string> {
  const expanded = new Set<string>();
  for (const scope of scopes) {
    expanded.add(scope);
    for (const implied of IMPLIED_SCOPES[scope] ?? []) {
      expanded.add(implied);
    }
  }
  return expanded;
}

/**
 * Returns the scope that a context parameter such as `repository.uuid` needs,
 * or undefined when Bitbucket defines no such parameter.
 */
export function scopeForContextParameter(parameter: string): string | undefined {
  const root = parameter.split('.')[0] ?? '';
  return CONTEXT_PARAMETER_SCOPES[root];
}

/** Returns the scopes an installation is granted for a descriptor's `scopes` field. */
export function grantedScopesFor(descriptorScopes: unknown): string[] {
  // A descriptor without `scopes` requests every scope.
  if (!Array.isArray(descriptorScopes)) {
    return [...KNOWN_SCOPES];
  }
  return descriptorScopes.filter((scope): scope is string => typeof scope === 'string' && isKnownScope(scope));
}
