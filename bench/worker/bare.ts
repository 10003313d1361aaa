/**
 * A worker without Hono or the framework that returns the floor route's
 * JSON body. The bench serves it next to the bench worker, so that the
 * floor comparison shows what workerd itself costs here and what the
 * framework adds to it.
 */
import { STATIC_PATH } from './constants';

export default {
  fetch(request) {
    if (new URL(request.url).pathname !== STATIC_PATH) {
      return new Response('Not found\n', { status: 404 });
    }
    return Response.json({ ok: true });
  },
} satisfies ExportedHandler;
