/**
 * Generators of changed tokens for the attack tests: single-character edits,
 * claim changes without re-signing, other signing secrets and other encodings
 * of the same segments. Each generator describes its change as data, so a
 * failing run prints which change got through.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { SECRET_OLD, base64UrlJson } from '../helpers';

export const SEGMENT_NAMES = ['header', 'claims', 'signature'] as const;

/** Index of a token segment: 0 header, 1 claims, 2 signature. */
export type SegmentIndex = 0 | 1 | 2;

const segmentIndex: fc.Arbitrary<SegmentIndex> = fc.constantFrom(0, 1, 2);

/** How a test sends a token: `Authorization: JWT <token>` or `?jwt=<token>`. */
export type Transport = 'header' | 'query';

export const transport: fc.Arbitrary<Transport> = fc.constantFrom('header', 'query');

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Characters an edit writes: the base64url alphabet, its standard-base64 cousins, separators and whitespace. */
const editCharacter = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...BASE64URL_ALPHABET) },
  { weight: 1, arbitrary: fc.constantFrom('+', '/', '=', '.', ' ', '\t', '\n', '%', '"', '\u00e9', '\u2028', '\u0000') },
);

export type CharacterEdit =
  | { readonly kind: 'replace'; readonly segment: SegmentIndex; readonly position: number; readonly character: string }
  | { readonly kind: 'insert'; readonly segment: SegmentIndex; readonly position: number; readonly character: string }
  | { readonly kind: 'delete'; readonly segment: SegmentIndex; readonly position: number };

/** One replaced, inserted or deleted character. `position` is taken modulo the segment length. */
export const characterEdit: fc.Arbitrary<CharacterEdit> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), segment: segmentIndex, position: fc.nat(), character: editCharacter }),
  fc.record({ kind: fc.constant('insert' as const), segment: segmentIndex, position: fc.nat(), character: editCharacter }),
  fc.record({ kind: fc.constant('delete' as const), segment: segmentIndex, position: fc.nat() }),
);

export function applyCharacterEdit(token: string, edit: CharacterEdit): string {
  const segments = token.split('.');
  const segment = segments[edit.segment] ?? '';

  if (edit.kind === 'insert') {
    const position = edit.position % (segment.length + 1);
    segments[edit.segment] = segment.slice(0, position) + edit.character + segment.slice(position);
    return segments.join('.');
  }
  if (segment.length === 0) {
    return token;
  }

  const position = edit.position % segment.length;
  const replacement = edit.kind === 'replace' ? edit.character : '';
  segments[edit.segment] = segment.slice(0, position) + replacement + segment.slice(position + 1);
  return segments.join('.');
}

/** Decodes the claims segment of a token without checking anything. */
export function decodeClaims(token: string): Record<string, unknown> {
  const segment = (token.split('.')[1] ?? '').replaceAll('-', '+').replaceAll('_', '/');
  return JSON.parse(atob(segment)) as Record<string, unknown>;
}

/** Claims that a mutation may change. */
export const CHANGED_CLAIM_NAMES = ['iss', 'sub', 'exp', 'iat', 'qsh', 'nbf'] as const;

export interface ClaimChange {
  readonly name: (typeof CHANGED_CLAIM_NAMES)[number];
  /** The new value, or `undefined` to remove the claim. */
  readonly value: unknown;
}

/** Values an attacker would try for a claim, next to arbitrary JSON. */
function claimValue(otherClientKey: string, nowSeconds: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constant(undefined),
    fc.constant(otherClientKey),
    fc.integer({ min: nowSeconds - 100_000, max: nowSeconds + 100_000 }),
    fc.constantFrom(1e308, -1e308, 0, -1, 0.5, Number.MAX_SAFE_INTEGER, nowSeconds + 0.5),
    fc.stringMatching(/^[0-9a-f]{64}$/),
    fc.string({ maxLength: 40 }),
    fc.jsonValue({ maxDepth: 2 }),
  );
}

export function claimChange(otherClientKey: string, nowSeconds: number): fc.Arbitrary<ClaimChange> {
  return fc.record({ name: fc.constantFrom(...CHANGED_CLAIM_NAMES), value: claimValue(otherClientKey, nowSeconds) });
}

/**
 * Puts changed claims into the token and keeps its header and signature.
 * Returns undefined when the change leaves the encoded claims as they were.
 */
export function applyClaimChange(token: string, claims: Record<string, unknown>, change: ClaimChange): string | undefined {
  const changed: Record<string, unknown> = { ...claims };
  if (change.value === undefined) {
    delete changed[change.name];
  } else {
    changed[change.name] = change.value;
  }

  const [header = '', encodedClaims = '', signature = ''] = token.split('.');
  const reencoded = base64UrlJson(changed);
  return reencoded === encodedClaims ? undefined : `${header}.${reencoded}.${signature}`;
}

/** Secrets other than `secret`: random text, and `secret` with one character changed, added or dropped. */
export function otherSecret(secret: string): fc.Arbitrary<string> {
  const nearMiss = fc
    .record({ position: fc.nat({ max: secret.length - 1 }), character: fc.constantFrom(...BASE64URL_ALPHABET), kind: fc.constantFrom('replace', 'append', 'drop') })
    .map(({ position, character, kind }) => {
      if (kind === 'append') {
        return secret + character;
      }
      if (kind === 'drop') {
        return secret.slice(0, position) + secret.slice(position + 1);
      }
      return secret.slice(0, position) + character + secret.slice(position + 1);
    });
  return fc
    .oneof(nearMiss, fc.string({ minLength: 1, maxLength: 128, unit: 'binary' }))
    .filter((candidate) => candidate !== secret && candidate !== '');
}

export type EncodingChange =
  | { readonly kind: 'standard-base64'; readonly segment: SegmentIndex }
  | { readonly kind: 'padding'; readonly segment: SegmentIndex; readonly padding: '=' | '==' }
  | { readonly kind: 'whitespace'; readonly segment: SegmentIndex; readonly position: number; readonly whitespace: string }
  | { readonly kind: 'upper-case'; readonly segment: SegmentIndex }
  | { readonly kind: 'lower-case'; readonly segment: SegmentIndex }
  | { readonly kind: 'swap-case'; readonly segment: SegmentIndex; readonly position: number }
  | { readonly kind: 'trailing-dot' }
  | { readonly kind: 'leading-dot' }
  | { readonly kind: 'double-dot'; readonly separator: 0 | 1 }
  | { readonly kind: 'extra-segment'; readonly segment: string };

/** Another spelling of the same bytes, or the same segments with a separator added. */
export const encodingChange: fc.Arbitrary<EncodingChange> = fc.oneof(
  fc.record({ kind: fc.constant('standard-base64' as const), segment: segmentIndex }),
  fc.record({ kind: fc.constant('padding' as const), segment: segmentIndex, padding: fc.constantFrom('=' as const, '==' as const) }),
  fc.record({
    kind: fc.constant('whitespace' as const),
    segment: segmentIndex,
    position: fc.nat(),
    whitespace: fc.constantFrom(' ', '\t', '\n', '\r\n', '\u00a0', '\u2028'),
  }),
  fc.record({ kind: fc.constant('upper-case' as const), segment: segmentIndex }),
  fc.record({ kind: fc.constant('lower-case' as const), segment: segmentIndex }),
  fc.record({ kind: fc.constant('swap-case' as const), segment: segmentIndex, position: fc.nat() }),
  fc.record({ kind: fc.constant('trailing-dot' as const) }),
  fc.record({ kind: fc.constant('leading-dot' as const) }),
  fc.record({ kind: fc.constant('double-dot' as const), separator: fc.constantFrom(0 as const, 1 as const) }),
  fc.record({ kind: fc.constant('extra-segment' as const), segment: fc.constantFrom('', 'e30', 'AAAA', 'c2lnbmF0dXJl') }),
);

export function applyEncodingChange(token: string, change: EncodingChange): string {
  const segments = token.split('.');

  switch (change.kind) {
    case 'trailing-dot':
      return `${token}.`;
    case 'leading-dot':
      return `.${token}`;
    case 'double-dot':
      segments[change.separator] = `${segments[change.separator] ?? ''}.`;
      return segments.join('.');
    case 'extra-segment':
      return `${token}.${change.segment}`;
    default:
      break;
  }

  const segment = segments[change.segment] ?? '';
  segments[change.segment] = respellSegment(segment, change);
  return segments.join('.');
}

function respellSegment(segment: string, change: EncodingChange): string {
  switch (change.kind) {
    case 'standard-base64':
      return segment.replaceAll('-', '+').replaceAll('_', '/');
    case 'padding':
      return segment + change.padding;
    case 'whitespace': {
      const position = change.position % (segment.length + 1);
      return segment.slice(0, position) + change.whitespace + segment.slice(position);
    }
    case 'upper-case':
      return segment.toUpperCase();
    case 'lower-case':
      return segment.toLowerCase();
    case 'swap-case': {
      const position = segment.length === 0 ? 0 : change.position % segment.length;
      const character = segment.charAt(position);
      const swapped = character === character.toUpperCase() ? character.toLowerCase() : character.toUpperCase();
      return segment.slice(0, position) + swapped + segment.slice(position + 1);
    }
    default:
      return segment;
  }
}

/**
 * Checks whether `Authorization: JWT <token>` carries exactly this token.
 * Header values cannot contain CR, LF or NUL, workerd warns about non-ASCII
 * values, and HTTP strips whitespace at either end of a value.
 */
export function fitsInHeader(token: string): boolean {
  return token === token.trim() && /^[\t\x20-\x7e]*$/.test(token);
}

/** Appends the token as the `jwt` query parameter to a path that may already have a query. */
export function pathWithToken(path: string, token: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}jwt=${encodeURIComponent(token)}`;
}

export type HmacHash = 'SHA-256' | 'SHA-384' | 'SHA-512';

export function base64UrlBytes(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** Signs the exact header and claims text, so a test can send JSON that JSON.stringify never writes. */
export async function signText(headerText: string, claimsText: string, secret = SECRET_OLD, hash: HmacHash = 'SHA-256'): Promise<string> {
  const signingInput = `${base64UrlJson(headerText)}.${base64UrlJson(claimsText)}`;
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(signingInput));
  return `${signingInput}.${base64UrlBytes(new Uint8Array(signature))}`;
}

/** Things no rejection may echo: the token sent, the valid token's signature and the secrets. */
export interface Confidential {
  readonly token: string;
  readonly signature: string;
  readonly secrets: readonly string[];
}

/** Shortest token or segment looked for in a response, because shorter text can occur there by chance. */
const MIN_CHECKED_LENGTH = 16;

/** Asserts that a response text or log output repeats no token, signature or secret. */
export function expectNothingConfidential(text: string, confidential: Confidential): void {
  for (const secret of confidential.secrets) {
    expect(text).not.toContain(secret);
  }
  if (confidential.signature.length >= MIN_CHECKED_LENGTH) {
    expect(text).not.toContain(confidential.signature);
  }
  for (const part of [confidential.token, ...confidential.token.split('.')]) {
    if (part.length >= MIN_CHECKED_LENGTH) {
      expect(text).not.toContain(part);
    }
  }
}
