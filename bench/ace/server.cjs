// The atlassian-connect-express (ACE) peer of the bench worker: the same
// routes on ACE's own stack. Run by bench/harness with the working directory
// bench/ace, NODE_ENV=production (ACE then neither watches nor validates the
// descriptor and never registers with a host), PORT and AC_LOCAL_BASE_URL.
//
// - POST /installed: ACE's lifecycle route. For Bitbucket, ACE accepts the
//   first install of a clientKey without a JWT and stores it in its default
//   store (Sequelize on in-memory SQLite).
// - GET /bench/page: addon.authenticate(), then {clientKey} as JSON.
// - GET /bench/static: the same kind of JSON body without authentication.
// - GET /bench/exchanges?n=N&clientKey=K: N concurrent GET /2.0/user calls
//   through ACE's HTTP client, which for Bitbucket signs every request with
//   its own JWT and never requests an access token.
'use strict';

const express = require('express');
const ace = require('atlassian-connect-express');

// Matches MAX_CONCURRENT_CALLS of the bench worker.
const MAX_CONCURRENT_CALLS = 1000;

const app = express();
const addon = ace(app);

// The body parsers and request middleware of ACE's own app template.
app.use(express.json());
app.use(express.urlencoded({ extended: false }));
app.use(addon.middleware());

app.get('/bench/static', (req, res) => {
  res.json({ ok: true });
});

app.get('/bench/page', addon.authenticate(), (req, res) => {
  res.json({ clientKey: req.context.clientKey });
});

app.get('/bench/exchanges', async (req, res) => {
  const n = Number(req.query.n);
  const clientKey = String(req.query.clientKey || '');
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENT_CALLS || clientKey === '') {
    res.status(400).json({ error: `n must be a whole number from 1 to ${MAX_CONCURRENT_CALLS}, and clientKey is required.` });
    return;
  }

  const calls = Array.from({ length: n }, () => getUser(clientKey));
  const statuses = await Promise.all(calls);
  const failures = {};
  let succeeded = 0;
  for (const status of statuses) {
    if (status === 200) {
      succeeded += 1;
    } else {
      failures[status] = (failures[status] || 0) + 1;
    }
  }
  res.json({ n, succeeded, failures });
});

/** Calls GET /2.0/user as the installation and resolves to the HTTP status, or "error". */
function getUser(clientKey) {
  return new Promise((resolve) => {
    const pending = addon.httpClient({ clientKey }).get({ url: '/2.0/user', json: true }, (error, response) => {
      resolve(error ? 'error' : response.statusCode);
    });
    // A missing installation rejects before the callback runs.
    Promise.resolve(pending).catch(() => resolve('error'));
  });
}

const port = Number(process.env.PORT);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`ACE peer listening on http://127.0.0.1:${port}`);
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
