// An ES module ecosystem file, as socket.io's PM2 example writes it:
// named exports, no default.
export const apps = [
  {
    name: 'pm2-example',
    script: 'entrypoint.js',
    instances: 'max',
    exec_mode: 'cluster',
    env: { PORT: 3000 },
  },
];
