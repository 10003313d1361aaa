/**
 * The smallest worker built only on the framework: descriptor, lifecycle
 * routes and one authenticated page. The bench builds it to report the
 * framework's own bundle size, apart from the sample app.
 */
import { authenticate, createConnectApp } from '../../src/connect';
import { benchDescriptor } from './descriptor';
import { PAGE_PATH } from './constants';

const app = createConnectApp({ descriptor: benchDescriptor });
app.get(PAGE_PATH, authenticate(), (c) => c.json({ clientKey: c.get('clientKey') }));

export default app;
