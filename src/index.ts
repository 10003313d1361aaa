/**
 * The worker: the sample app built on the framework's public API.
 */
import { createConnectApp, type ConnectBindings } from './connect';
import { sampleDescriptor } from './app/descriptor';
import { registerSampleRoutes } from './app/routes';

const app = createConnectApp<ConnectBindings>({ descriptor: sampleDescriptor });
registerSampleRoutes(app);

export default app;
