// A configuration file that fails when run.
const port = require('./no-such-settings.json').port;
module.exports = { apps: [{ name: 'web', script: 'server.js', env: { PORT: port } }] };
