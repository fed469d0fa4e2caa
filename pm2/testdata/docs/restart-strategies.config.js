// PM2's "Restart Strategies" page: a cron restart, a fixed and an
// exponential restart delay, a memory threshold, no autorestart for a
// one-time script, and exit codes that skip the restart. The page gives
// bare lists of apps as well: module.exports = [{...}].
module.exports = [
  {
    name: 'Business News Watcher',
    script: 'app.js',
    instances: 1,
    cron_restart: '0 0 * * *',
    env: { NODE_ENV: 'development' },
    env_production: { NODE_ENV: 'production' },
  },
  { name: 'backoff', script: 'app.js', exp_backoff_restart_delay: 100 },
  { name: 'delay', script: 'app.js', restart_delay: 3000 },
  { name: 'memory', script: 'api.js', max_memory_restart: '300M' },
  { name: 'once', script: 'script.js', autorestart: false },
  { name: 'done-is-done', script: 'app.js', stop_exit_codes: [0] },
];
