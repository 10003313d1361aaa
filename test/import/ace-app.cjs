// A Bitbucket Connect app on atlassian-connect-express (ACE), the store the
// import reads. The test harness runs it with node from a temporary working
// directory that contains ACE's config.json (product "bitbucket", a loopback
// port, and the store under test) and atlassian-connect.json, with
// NODE_ENV=production so ACE neither watches the descriptor nor registers
// with a host.
//
// Routes are ACE's own: POST /installed verifies and stores installs (the
// first install of a clientKey unsigned, a re-install signed with the stored
// secret), and GET /whoami sits behind addon.authenticate().
'use strict';

const { createRequire } = require('node:module');

// ACE and Express are installed under bench/, not at the repository root.
const benchRequire = createRequire(process.env.ACE_PACKAGE_JSON);
const express = benchRequire('express');
const ace = benchRequire('atlassian-connect-express');

const app = express();
app.use(express.json());
const addon = ace(app);
app.use(addon.middleware());

app.get('/whoami', addon.authenticate(), (req, res) => {
  res.json({ clientKey: req.context.clientKey });
});

const port = Number(addon.config.port());
app.listen(port, '127.0.0.1', () => {
  console.log(`ace-app listening on 127.0.0.1:${port}`);
});
