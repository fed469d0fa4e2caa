// The two apps of PM2's "Configuration File" page (application-declaration):
// a watched worker with development and production environments, and an
// API in cluster mode on four instances.
module.exports = {
  apps: [{
    name: 'worker',
    script: './worker.js',
    watch: true,
    env: {
      NODE_ENV: 'development',
    },
    env_production: {
      NODE_ENV: 'production',
    },
  }, {
    name: 'api-app',
    script: './api.js',
    instances: 4,
    exec_mode: 'cluster',
  }],
};
