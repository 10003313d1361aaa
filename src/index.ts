/**
 * The worker: the sample app built on the framework's public API.
 */
import { createConnectApp, type ConnectBindings } from './connect';
import { sampleDescriptor } from './app/descriptor';

const app = createConnectApp<ConnectBindings>({ descriptor: sampleDescriptor });

export default app;
