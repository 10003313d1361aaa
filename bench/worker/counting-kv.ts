/**
 * A KV binding wrapper that counts operations, so the harness can report KV
 * reads and writes per request. The counters live in the isolate, which is
 * one isolate under Miniflare, and are read and reset through the
 * kv-counts route.
 */
import type { KvOperationCounts } from './constants';

type CountedOperation = keyof KvOperationCounts;

const counts: KvOperationCounts = { get: 0, getWithMetadata: 0, put: 0, delete: 0, list: 0 };

/**
 * One wrapper per binding. The framework keys its isolate caches by the
 * binding object, which workerd keeps the same across requests, so a new
 * wrapper per request would defeat those caches and inflate the counts.
 */
const wrappers = new WeakMap<KVNamespace, KVNamespace>();

function isCountedOperation(name: string | symbol): name is CountedOperation {
  return typeof name === 'string' && Object.hasOwn(counts, name);
}

/** Returns the wrapper of a KV binding, in which each call of a KV method increments its counter. */
export function countingKv(kv: KVNamespace): KVNamespace {
  let wrapper = wrappers.get(kv);
  if (wrapper === undefined) {
    wrapper = wrapKv(kv);
    wrappers.set(kv, wrapper);
  }
  return wrapper;
}

function wrapKv(kv: KVNamespace): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (!isCountedOperation(property) || typeof value !== 'function') {
        return value;
      }
      return (...args: unknown[]) => {
        counts[property] += 1;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

export function readKvCounts(): KvOperationCounts {
  return { ...counts };
}

export function resetKvCounts(): void {
  for (const name of Object.keys(counts) as CountedOperation[]) {
    counts[name] = 0;
  }
}
