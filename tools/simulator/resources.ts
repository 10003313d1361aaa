// Look-ups of seeded workspaces and repositories by slug or UUID, and the
// page format of Bitbucket's list endpoints.

import type { SeedData, SeedRepository } from './seed';

export const DEFAULT_PAGE_LENGTH = 10;
export const MAX_PAGE_LENGTH = 100;

/** Returns a UUID in braces and lower case, from a braced or bare UUID. */
export function normalizeUuid(value: string): string {
  const bare = value.trim().replace(/^\{/, '').replace(/\}$/, '').toLowerCase();
  return `{${bare}}`;
}

function isUuidLike(value: string): boolean {
  return /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/.test(value.trim());
}

export function findRepositoryByUuid(seed: SeedData, uuid: string): SeedRepository | undefined {
  if (!isUuidLike(uuid)) {
    return undefined;
  }
  const wanted = normalizeUuid(uuid);
  return seed.repositories.find((repository) => repository.uuid === wanted);
}

/** Matches a decoded workspace path segment: its slug or its braced UUID. */
export function matchesWorkspace(seed: SeedData, segment: string): boolean {
  if (segment === seed.workspace.slug) {
    return true;
  }
  return segment.startsWith('{') && isUuidLike(segment) && normalizeUuid(segment) === seed.workspace.uuid;
}

/** Finds a repository by a decoded path segment: its slug or its braced UUID. */
export function findRepository(seed: SeedData, segment: string): SeedRepository | undefined {
  if (segment.startsWith('{')) {
    return findRepositoryByUuid(seed, segment);
  }
  return seed.repositories.find((repository) => repository.slug === segment);
}

export interface PageRequest {
  page: number;
  pagelen: number;
}

/** Reads `page` and `pagelen`; returns an error message for values Bitbucket would reject. */
export function readPageRequest(query: URLSearchParams): PageRequest | string {
  const pagelenText = query.get('pagelen');
  const pageText = query.get('page');
  const pagelen = pagelenText === null ? DEFAULT_PAGE_LENGTH : Number(pagelenText);
  const page = pageText === null ? 1 : Number(pageText);
  if (!Number.isInteger(pagelen) || pagelen < 1) {
    return `Invalid pagelen ${JSON.stringify(pagelenText)}: use an integer from 1 to ${MAX_PAGE_LENGTH}`;
  }
  if (!Number.isInteger(page) || page < 1) {
    return `Invalid page ${JSON.stringify(pageText)}: use an integer from 1`;
  }
  return { page, pagelen: Math.min(pagelen, MAX_PAGE_LENGTH) };
}

/**
 * Builds one page of a list: `{values, pagelen, size, page, next?, previous?}`.
 * `next` and `previous` are absolute URLs with the request's query and the
 * page number changed.
 */
export function buildPage<T>(
  values: readonly T[],
  request: PageRequest,
  requestUrl: URL,
): Record<string, unknown> {
  const start = (request.page - 1) * request.pagelen;
  const page: Record<string, unknown> = {
    pagelen: request.pagelen,
    size: values.length,
    page: request.page,
    values: values.slice(start, start + request.pagelen),
  };
  const linkToPage = (number: number): string => {
    const link = new URL(requestUrl);
    link.searchParams.set('page', String(number));
    return link.toString();
  };
  if (start + request.pagelen < values.length) {
    page.next = linkToPage(request.page + 1);
  }
  if (request.page > 1) {
    page.previous = linkToPage(Math.min(request.page - 1, Math.max(1, Math.ceil(values.length / request.pagelen))));
  }
  return page;
}
