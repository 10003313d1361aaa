/**
 * The bench worker: the framework with the routes that `npm run bench`
 * measures. Never deploy it, because its measurement routes are
 * unauthenticated and make outbound calls on request.
 *
 * - GET /bench/page: Connect JWT verification through authenticate(), then
 *   `{clientKey}` as JSON.
 * - GET /bench/static: the same kind of JSON body without authentication.
 * - /bench/step, /bench/exchanges, /bench/kv-counts: see their modules.
 */
import { authenticate, createConnectApp } from '../../src/connect';
import type { BenchBindings } from './bindings';
import { COUNT_KV_BINDING, KV_COUNTS_PATH, PAGE_PATH, STATIC_PATH } from './constants';
import { countingKv, readKvCounts, resetKvCounts } from './counting-kv';
import { benchDescriptor } from './descriptor';
import { registerExchangeRoute } from './exchanges';
import { registerStepRoute } from './steps';

const app = createConnectApp<BenchBindings>({ descriptor: benchDescriptor });

app.get(STATIC_PATH, (c) => c.json({ ok: true }));
app.get(PAGE_PATH, authenticate<BenchBindings>(), (c) => c.json({ clientKey: c.get('clientKey') }));

registerStepRoute(app);
registerExchangeRoute(app);
app.get(KV_COUNTS_PATH, (c) => {
  const counts = readKvCounts();
  if (c.req.query('reset') === '1') {
    resetKvCounts();
  }
  return c.json(counts);
});

export default {
  fetch(request, env, ctx) {
    const bindings = env[COUNT_KV_BINDING] === 'true' ? { ...env, CONNECT_KV: countingKv(env.CONNECT_KV) } : env;
    return app.fetch(request, bindings, ctx);
  },
} satisfies ExportedHandler<BenchBindings>;
