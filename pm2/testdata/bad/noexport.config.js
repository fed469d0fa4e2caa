// Exports nothing.
const apps = [{ name: 'web', script: 'server.js' }];
