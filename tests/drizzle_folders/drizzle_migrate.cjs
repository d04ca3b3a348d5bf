// drizzle-orm's own migrate() (node-postgres driver) on one migrations folder: the reference the differential tests
// and bench/migrate.py hold wfops's migrator to. drizzle-orm and pg come from the sandbox app's node_modules.
//
//   WFOPS_APP_DIR=sandbox-app PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... [PGPASSWORD=...] \
//     node drizzle_migrate.cjs <folder> [schema] [table]
//
// Prints one JSON line: {"ok": true, "ms": <migrate() alone>} or {"ok": false, "error": "...", "cause": "..."};
// exits 1 when migrate() failed. The connection comes from libpq's environment variables, never argv.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const app = process.env.WFOPS_APP_DIR || path.join(__dirname, '..', '..', 'sandbox-app');
const fromApp = createRequire(path.join(path.resolve(app), 'package.json'));
const { Client } = fromApp('pg');
const { drizzle } = fromApp('drizzle-orm/node-postgres');
const { migrate } = fromApp('drizzle-orm/node-postgres/migrator');

async function main() {
  const [folder, migrationsSchema = 'drizzle', migrationsTable = '__drizzle_migrations'] = process.argv.slice(2);
  const client = new Client();
  await client.connect();
  const started = process.hrtime.bigint();
  try {
    await migrate(drizzle(client), { migrationsFolder: folder, migrationsSchema, migrationsTable });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(JSON.stringify({ ok: true, ms }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, error: String(error.message), cause: String(error.cause?.message ?? '') }));
    process.exitCode = 1;
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error.message), cause: '' }));
  process.exitCode = 2;
});
