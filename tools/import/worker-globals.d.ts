// The store modules in src/connect name the Workers global `KVNamespace`;
// this gives it its real type when tools are checked with Node's types.
declare global {
  type KVNamespace<Key extends string = string> = import('@cloudflare/workers-types/index').KVNamespace<Key>;
}
export {};
