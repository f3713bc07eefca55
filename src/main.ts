import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createDemoApp } from './demo/create-app.js';
import { loadDemoConfig } from './demo/demo-config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './demo/embedded-postgres.js';

/** `npm start`: the demo on PORT (default 3000), with a throwaway PostgreSQL unless DATABASE_URL is set. */
async function main(): Promise<void> {
  const logger = new Logger('Demo');
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    logger.log('DATABASE_URL not set: starting an embedded PostgreSQL (data is thrown away on exit)');
    embedded = await startEmbeddedPostgres();
    databaseUrl = embedded.url;
  }
  const config = loadDemoConfig(process.env, databaseUrl);
  const app = await createDemoApp(config);
  const stop = async () => {
    await app.close();
    await embedded?.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await app.listen(config.port, '127.0.0.1');
  logger.log(
    `nest-pg-session demo (${config.adapter}, ${config.session.transport}) on http://localhost:${config.port}`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
