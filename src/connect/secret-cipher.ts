/**
 * Encryption at rest for shared secrets and access tokens in KV: AES-256-GCM
 * (WebCrypto) under a key from the `CONNECT_ENCRYPTION_KEY` Worker secret.
 *
 * - Each value carries the id of the key that encrypted it, so keys rotate:
 *   the current key encrypts, and keys listed in `CONNECT_ENCRYPTION_OLD_KEYS`
 *   still decrypt. A record moves to the current key when it is next written.
 * - The KV key of the value is the additional authenticated data, so a
 *   ciphertext copied to another installation's key fails to decrypt.
 * - There is no plaintext fallback. Without a key, the first operation that
 *   needs one fails with a configuration error that explains how to set it.
 *
 * Key format: `<key id>:<base64 of 32 random bytes>`, for example created with
 * `node -e "console.log('k1:' + require('crypto').randomBytes(32).toString('base64'))"`.
 */
import { ConnectError } from './errors';
import { logEvent } from './log';

/** AES-256 key length, in bytes. */
export const ENCRYPTION_KEY_BYTES = 32;

/** AES-GCM nonce length recommended by NIST SP 800-38D, in bytes. */
const IV_BYTES = 12;

/** Decrypted values kept per isolate, so a request does not decrypt the same secret again. */
const DECRYPTED_CACHE_SIZE = 1024;

const KEY_ID_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * The key in `.dev.vars.example`, for local development and tests only. Using
 * it is logged once per isolate; it must never protect real data.
 */
export const DEVELOPMENT_ENCRYPTION_KEY = 'dev-example:ZGV2LWtleS1uZXZlci11c2UtaW4tcHJvZHVjdGlvbiE=';

/** An encrypted string as stored in KV; all fields are base64url. */
export interface EncryptedValue {
  readonly kid: string;
  readonly iv: string;
  readonly ct: string;
}

export interface SecretCipher {
  readonly currentKeyId: string;
  encrypt(plaintext: string, associatedData: string): Promise<EncryptedValue>;
  decrypt(value: EncryptedValue, associatedData: string): Promise<string>;
}

/** Bindings that configure the keys. */
export interface EncryptionBindings {
  CONNECT_ENCRYPTION_KEY?: string;
  CONNECT_ENCRYPTION_OLD_KEYS?: string;
}

interface KeyEntry {
  readonly id: string;
  readonly key: Promise<CryptoKey>;
}

const ciphers = new Map<string, SecretCipher>();
let developmentKeyReported = false;

/** Returns the cipher for the configured keys, built once per isolate and key set. */
export function secretCipherFromBindings(bindings: EncryptionBindings): SecretCipher {
  const current = bindings.CONNECT_ENCRYPTION_KEY?.trim() ?? '';
  const old = bindings.CONNECT_ENCRYPTION_OLD_KEYS?.trim() ?? '';
  if (current === '') {
    throw new ConnectError(
      'configuration_error',
      'CONNECT_ENCRYPTION_KEY is not set, so secrets cannot be stored or read. Create a key with ' +
        '`node -e "console.log(\'k1:\' + require(\'crypto\').randomBytes(32).toString(\'base64\'))"` and set it with ' +
        '`npx wrangler secret put CONNECT_ENCRYPTION_KEY` (locally: in .dev.vars).',
    );
  }

  const cacheKey = `${current}\n${old}`;
  const cached = ciphers.get(cacheKey);
  if (cached !== undefined) {
    return cached;
  }

  if (current === DEVELOPMENT_ENCRYPTION_KEY && !developmentKeyReported) {
    developmentKeyReported = true;
    logEvent('warn', 'development_encryption_key', {
      note: 'CONNECT_ENCRYPTION_KEY is the public development key; use it for local development only.',
    });
  }

  const cipher = createSecretCipher(current, old === '' ? [] : old.split(','));
  ciphers.set(cacheKey, cipher);
  return cipher;
}

/** Builds a cipher from `<id>:<base64>` key specs; the first encrypts, all decrypt. */
export function createSecretCipher(currentSpec: string, oldSpecs: readonly string[] = []): SecretCipher {
  const current = parseKeySpec(currentSpec, 'CONNECT_ENCRYPTION_KEY');
  const keys = new Map<string, KeyEntry>([[current.id, current]]);
  for (const spec of oldSpecs) {
    if (spec.trim() === '') {
      continue;
    }
    const entry = parseKeySpec(spec.trim(), 'CONNECT_ENCRYPTION_OLD_KEYS');
    if (!keys.has(entry.id)) {
      keys.set(entry.id, entry);
    }
  }

  const decrypted = new Map<string, string>();

  return {
    currentKeyId: current.id,

    async encrypt(plaintext, associatedData) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const ciphertext = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: utf8(associatedData) },
        await current.key,
        utf8(plaintext),
      );
      return { kid: current.id, iv: toBase64Url(iv), ct: toBase64Url(new Uint8Array(ciphertext)) };
    },

    async decrypt(value, associatedData) {
      const memoKey = `${associatedData}\n${value.kid}\n${value.iv}\n${value.ct}`;
      const remembered = decrypted.get(memoKey);
      if (remembered !== undefined) {
        return remembered;
      }

      const entry = keys.get(value.kid);
      if (entry === undefined) {
        throw new ConnectError(
          'configuration_error',
          `A stored value is encrypted with key id "${value.kid}", which is neither CONNECT_ENCRYPTION_KEY nor in CONNECT_ENCRYPTION_OLD_KEYS.`,
        );
      }

      let plaintext: ArrayBuffer;
      try {
        plaintext = await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: fromBase64Url(value.iv), additionalData: utf8(associatedData) },
          await entry.key,
          fromBase64Url(value.ct),
        );
      } catch {
        throw new ConnectError(
          'storage_failed',
          'A stored secret failed to decrypt: it was changed, or copied from another KV key.',
        );
      }

      const text = new TextDecoder().decode(plaintext);
      if (decrypted.size >= DECRYPTED_CACHE_SIZE) {
        decrypted.clear();
      }
      decrypted.set(memoKey, text);
      return text;
    },
  };
}

function parseKeySpec(spec: string, name: string): KeyEntry {
  const separator = spec.indexOf(':');
  const id = separator === -1 ? '' : spec.slice(0, separator);
  if (!KEY_ID_PATTERN.test(id)) {
    throw new ConnectError(
      'configuration_error',
      `${name} must look like "<key id>:<base64 of ${ENCRYPTION_KEY_BYTES} bytes>", with a key id of letters, digits, ".", "_" or "-".`,
    );
  }

  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = fromBase64(spec.slice(separator + 1));
  } catch {
    throw new ConnectError('configuration_error', `${name} key "${id}" is not valid base64.`);
  }
  if (raw.byteLength !== ENCRYPTION_KEY_BYTES) {
    throw new ConnectError('configuration_error', `${name} key "${id}" must be ${ENCRYPTION_KEY_BYTES} bytes, not ${raw.byteLength}.`);
  }

  const key = crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
  return { id, key };
}

/** Checks the shape of an encrypted value read from storage. */
export function isEncryptedValue(value: unknown): value is EncryptedValue {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const { kid, iv, ct } = value as Record<string, unknown>;
  return typeof kid === 'string' && typeof iv === 'string' && typeof ct === 'string';
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  const encoded = new TextEncoder().encode(text);
  const copy = new Uint8Array(encoded.byteLength);
  copy.set(encoded);
  return copy;
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  return fromBase64(text.replace(/-/g, '+').replace(/_/g, '/'));
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index += 1) {
    bytes[index] = binary.charCodeAt(index);
  }
  return bytes;
}
