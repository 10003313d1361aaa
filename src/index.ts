/**
 * The worker: the sample app built on the framework's public API.
 */
import { createConnectApp, type ConnectBindings } from './connect';
import { sampleDescriptor } from './app/descriptor';
import { registerSampleRoutes } from './app/routes';

/**
 * `Env` is generated from wrangler.toml by `npm run types`. This line fails to
 * compile when wrangler.toml's bindings no longer fit what the framework reads.
 */
type FitsConnectBindings<Bindings extends ConnectBindings> = Bindings;
export type WorkerBindings = FitsConnectBindings<Env>;

const app = createConnectApp<ConnectBindings>({ descriptor: sampleDescriptor });
registerSampleRoutes(app);

export default app;
